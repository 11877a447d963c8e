"""A synthetic shop to watch recstream work, generated here (no download).

Items belong to genres and, within a genre, to short series (part 1, 2, 3 ...), so there is
something for every model to find: popularity (a few hits per genre), content (a user's
favourite genres), sessions (people watch a series in order) and CF (users with the same
tastes touch the same items). Users arrive over time, so the mix of phases moves.

>>> shop = DemoShop(n_users=20, n_items=60, seed=1)
>>> events = list(shop.events(200))
>>> len(events), sorted(events[0])[:3], events[0]["timestamp"] <= events[-1]["timestamp"]
(200, ['event_id', 'item_id', 'session_id'], True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

__all__ = ["GENRES", "DemoShop"]

GENRES = ("sci-fi", "drama", "comedy", "thriller", "documentary", "animation", "romance", "horror")
_WORDS = {
    "sci-fi": ["Star", "Orbit", "Android", "Nebula", "Quantum"],
    "drama": ["River", "Letters", "Winter", "Harbor", "Silence"],
    "comedy": ["Party", "Oops", "Roommates", "Wedding", "Pranks"],
    "thriller": ["Shadow", "Cipher", "Pursuit", "Vault", "Alibi"],
    "documentary": ["Planet", "Oceans", "Origins", "Machines", "Cities"],
    "animation": ["Dragon", "Robot", "Forest", "Toys", "Clouds"],
    "romance": ["Paris", "Moonlight", "Promise", "Summer", "Hearts"],
    "horror": ["Cellar", "Hollow", "Curse", "Fog", "Whispers"],
}
_TYPES = ("view", "click", "click", "click", "add_to_cart", "purchase", "like", "rating")


class DemoShop:
    """Users with latent genre tastes, items in genre series, sessions over simulated time."""

    def __init__(
        self, n_users: int = 300, n_items: int = 400, seed: int = 7, start: float = 1.7e9
    ) -> None:
        self.n_users, self.n_items, self.seed, self.start = n_users, n_items, seed, start
        rng = random.Random(seed)
        self.items: list[dict[str, Any]] = []
        self.series: dict[str, list[list[str]]] = {g: [] for g in GENRES}
        i = 0
        while i < n_items:
            genre = GENRES[i % len(GENRES)]
            second = rng.choice([g for g in GENRES if g != genre])
            word = rng.choice(_WORDS[genre])
            length = rng.randint(2, 5)
            run = []
            for part in range(1, length + 1):
                if i >= n_items:
                    break
                item_id = f"item{i:04d}"
                tags = [genre] + ([second] if rng.random() < 0.3 else [])
                self.items.append(
                    {
                        "item_id": item_id,
                        "op": "upsert",
                        "title": f"{word} {i} part {part}",
                        "text": f"A {genre} story about {word.lower()}.",
                        "tags": tags,
                    }
                )
                run.append(item_id)
                i += 1
            self.series[genre].append(run)
        self.tastes = [self._taste(rng) for _ in range(n_users)]

    @staticmethod
    def _taste(rng: random.Random) -> list[tuple[str, float]]:
        favourites = rng.sample(GENRES, 2)
        return [(favourites[0], 0.6), (favourites[1], 0.3), (rng.choice(GENRES), 0.1)]

    def _pick_genre(self, rng: random.Random, user: int) -> str:
        r, acc = rng.random(), 0.0
        for genre, p in self.tastes[user]:
            acc += p
            if r < acc:
                return genre
        return self.tastes[user][0][0]

    def events(self, n: int) -> Iterator[dict[str, Any]]:
        """``n`` interaction events in timestamp order; users join gradually."""
        rng = random.Random(self.seed + 1)
        t = self.start
        active: list[int] = []
        sessions: dict[int, tuple[str, list[str]]] = {}
        for e in range(n):
            joined = int(self.n_users * min(1.0, (e + 1) / (0.6 * n)))
            while len(active) < max(1, joined):
                active.append(len(active))
            # newer users are more active (so the phase mix keeps moving)
            user = active[min(len(active) - 1, int(len(active) * rng.random() ** 0.7))]
            sid, queue = sessions.get(user, ("", []))
            if not queue or rng.random() < 0.15:
                genre = self._pick_genre(rng, user)
                runs = self.series[genre] or [[it["item_id"] for it in self.items]]
                # a few series per genre are the hits
                run = runs[min(len(runs) - 1, int(len(runs) * rng.random() ** 2.5))]
                sid, queue = f"s{user}-{e}", list(run)
            item = queue.pop(0)
            sessions[user] = (sid, queue)
            t += rng.expovariate(1 / 2.0)
            kind = rng.choice(_TYPES)
            event: dict[str, Any] = {
                "event_id": f"demo-{self.seed}-{e}",
                "user_id": f"user{user:04d}",
                "item_id": item,
                "type": kind,
                "session_id": sid,
                "timestamp": round(t, 3),
            }
            if kind == "rating":
                event["value"] = float(rng.choice([3, 4, 4, 5, 5]))
            yield event
