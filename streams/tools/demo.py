"""A synthetic shop to watch recstream work, generated here (no download).

Items belong to genres and, within a genre, to short series (part 1, 2, 3 ...), so there is
something for every model to find: popularity (a few hits per genre), content (a user's
favourite genres), sessions (people watch a series in order) and CF (users with the same
tastes touch the same items). Users arrive throughout the stream, each stays for a number of
events of their own (a few to a few hundred) and leaves, and newer users are more active: to
the end there are newcomers, users crossing into the next phase and users who left, so the
mix of phases keeps moving.

>>> shop = DemoShop(n_users=20, n_items=60, seed=1)
>>> events = list(shop.events(200))
>>> len(events), sorted(events[0])[:3], events[0]["timestamp"] <= events[-1]["timestamp"]
(200, ['event_id', 'item_id', 'session_id'], True)
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["GENRES", "DemoShop", "user_id"]

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
    """Users with latent genre tastes, items in genre series, sessions over simulated time.

    A few of the ``n_users`` are there from the start, the others arrive evenly over the
    stream (one sooner when nobody is left); each stays for a lognormal number of events
    (median ``stay`` events).
    """

    def __init__(
        self,
        n_users: int = 300,
        n_items: int = 400,
        seed: int = 7,
        start: float = 1.7e9,
        stay: float = 30.0,
    ) -> None:
        self.n_users, self.n_items, self.seed, self.start = n_users, n_items, seed, start
        self.stay = stay
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
        self._tastes: dict[int, list[tuple[str, float]]] = {}

    @classmethod
    def for_events(cls, n: int, **kwargs: Any) -> DemoShop:
        """A shop for a stream of ``n`` events: a user arrives about every 30 events."""
        return cls(n_users=max(20, n // 30), **kwargs)

    def taste(self, user: int) -> list[tuple[str, float]]:
        """User ``user``'s genres and how often they pick each."""
        if user not in self._tastes:
            rng = random.Random(self.seed * 1_000_003 + user)
            favourites = rng.sample(GENRES, 2)
            self._tastes[user] = [
                (favourites[0], 0.6),
                (favourites[1], 0.3),
                (rng.choice(GENRES), 0.1),
            ]
        return self._tastes[user]

    def _pick_genre(self, rng: random.Random, user: int) -> str:
        r, acc = rng.random(), 0.0
        for genre, p in self.taste(user):
            acc += p
            if r < acc:
                return genre
        return self.taste(user)[0][0]

    def _users(self, n: int, rng: random.Random) -> Iterator[int]:
        """Who acts at each of ``n`` events."""
        present: list[int] = []  # in order of arrival
        left: dict[int, int] = {}  # events each present user has still to make
        arrived = 0

        def arrive() -> None:
            nonlocal arrived
            present.append(arrived)
            left[arrived] = max(1, int(rng.lognormvariate(math.log(self.stay), 1.0)))
            arrived += 1

        regulars = max(1, min(self.n_users, 10, self.n_users // 5))  # there at the start
        for e in range(n):
            due = regulars + (self.n_users - regulars) * e / n
            while arrived < self.n_users and arrived < due:
                arrive()
            if not present:
                arrive()
            # newer users are more active
            i = min(len(present) - 1, int(len(present) * rng.random() ** 0.7))
            user = present[i]
            left[user] -= 1
            if not left[user]:
                present.pop(i)
            yield user

    def events(self, n: int) -> Iterator[dict[str, Any]]:
        """``n`` interaction events in timestamp order; users arrive throughout."""
        rng = random.Random(self.seed + 1)
        t = self.start
        sessions: dict[int, tuple[str, list[str]]] = {}
        for e, user in enumerate(self._users(n, random.Random(self.seed + 2))):
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
                "user_id": user_id(user),
                "item_id": item,
                "type": kind,
                "session_id": sid,
                "timestamp": round(t, 3),
            }
            if kind == "rating":
                event["value"] = float(rng.choice([3, 4, 4, 5, 5]))
            yield event

    def followed(self, n: int, thresholds: Sequence[int] = (1, 5, 20)) -> list[str]:
        """Three users worth following in a stream of ``n`` events: first a newcomer, who
        arrives after the demo started (so their list is the cold-start one until then) and
        reaches the last phase; then the first user, and the busiest late arrival."""
        order = list(self._users(n, random.Random(self.seed + 2)))
        counts = Counter(order)
        seen: dict[int, list[int]] = {}
        for e, user in enumerate(order):
            seen.setdefault(user, []).append(e)
        first = {u: at[0] for u, at in seen.items()}
        later = [u for u in counts if first[u] >= 0.05 * n] or list(counts)
        done = sorted((u for u in later if counts[u] >= thresholds[-1]), key=first.__getitem__)
        if done:
            # of the first few, the one longest warm: its first events spread over the most
            # batches, so that every phase gets a list of its own
            warm = thresholds[1] - 1
            newcomer = max(done[:8], key=lambda u: seen[u][warm] - seen[u][0])
        else:
            newcomer = max(later, key=counts.__getitem__)
        picked = [newcomer]
        late = [u for u in counts if first[u] >= 0.5 * n and u not in picked]
        for candidate in [order[0], max(late, key=counts.__getitem__, default=None)]:
            if candidate is not None and candidate not in picked:
                picked.append(candidate)
        for user in sorted(counts, key=counts.__getitem__, reverse=True):  # n very small
            if len(picked) == 3:
                break
            if user not in picked:
                picked.append(user)
        return [user_id(u) for u in picked]


def user_id(user: int) -> str:
    return f"user{user:04d}"
