"""The README and ``--help`` describe every command and every option (issue #17, item 3)."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

from streams.tools.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_help_describes_every_command_and_every_option():
    found = commands()
    assert {"up", "worker", "replay", "tail", "evaluate"} <= set(found)
    undocumented = [
        f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
        for name, parser in found.items()
        for action in options(parser)
        if not (action.help or "").strip()
    ]
    assert not undocumented, f"options without help: {undocumented}"
    assert all((p.description or "").strip() for p in found.values())


def documented_options() -> set[tuple[str, str]]:
    """(command, flag) of each row of the README's options table."""
    found = set()
    for names, flag in re.findall(r"^\| ((?:`[a-z]+`(?:, )?)+) \| `(--[a-z-]+)", README, re.M):
        found |= {(name, flag) for name in re.findall(r"`([a-z]+)`", names)}
    return found


def test_the_readme_documents_every_option_of_every_command():
    documented = documented_options()
    missing = [
        f"{name} {flag}"
        for name, parser in commands().items()
        for action in options(parser)
        for flag in action.option_strings[:1]
        if (name, flag) not in documented
    ]
    assert not missing, f"the README's options table lacks: {missing}"


def test_the_readme_states_the_python_versions_the_package_accepts():
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", spec)
    high = re.search(r"<\s*3\.(\d+)", spec)
    assert low and high, spec
    versions = [f"3.{m}" for m in range(int(low.group(1)), int(high.group(1)))]
    stated = re.search(r"Python (3\.\d+(?:(?:, | or | and )3\.\d+)*)", README)
    assert stated, "the README does not say which Python versions are supported"
    assert re.findall(r"3\.\d+", stated.group(1)) == versions, (stated.group(0), spec)


def test_the_readme_documents_both_input_formats_with_their_example_files():
    for example in ("docs/examples/events.csv", "docs/examples/events.jsonl"):
        assert (ROOT / example).is_file(), example
        assert example in README, f"README does not point to {example}"
    header = (ROOT / "docs/examples/events.csv").read_text().splitlines()[0]
    assert f"`{header}`" in README or header in README, "the CSV columns are not shown"
    for layout in ("u.data", "u.item", "u.genre"):
        assert layout in README, f"the MovieLens layout does not mention {layout}"


def test_the_settings_table_gives_each_variables_real_default():
    from streams.settings import ENV_PREFIX, Settings

    rows = re.findall(r"^\| `(RECSTREAM_[A-Z_]+)` \| `([^`]*)` \|", README, flags=re.MULTILINE)
    assert len(rows) >= 10, "no settings table"
    wrong = []
    for name, shown in rows:
        field = Settings.model_fields.get(name[len(ENV_PREFIX) :].lower())
        if field is None:
            wrong.append(f"{name}: not a setting")
            continue
        default = field.default
        text = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        if shown != text and not (isinstance(default, float) and float(shown) == default):
            wrong.append(f"{name}: README {shown!r}, code {text!r}")
    assert not wrong, wrong
