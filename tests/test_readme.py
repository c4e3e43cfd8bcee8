"""README.md stays true to the code: the settings and metrics references and the named
commands."""

from __future__ import annotations

import re
from pathlib import Path

from hhar_stream.cli import build_parser, metrics_reference, settings_reference

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_settings_reference_is_current() -> None:
    block = re.search(
        r"<!-- settings-reference:start -->\n(.*?)<!-- settings-reference:end -->", README, re.S
    )
    assert block is not None
    assert block.group(1) == settings_reference(), (
        "README's settings table is stale: paste the output of `hhar config --reference`"
    )


def test_metrics_reference_is_current() -> None:
    block = re.search(
        r"<!-- metrics-reference:start -->\n(.*?)<!-- metrics-reference:end -->", README, re.S
    )
    assert block is not None
    assert block.group(1) == metrics_reference(), (
        "README's metrics table is stale: paste the output of `hhar config --metrics-reference`"
    )


def test_every_command_in_the_readme_exists() -> None:
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
    named = set(re.findall(r"`hhar ([a-z]+)", README))
    assert named <= commands, named - commands


def test_readme_shows_the_two_setup_commands_first() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("##", 1)[0]
    assert "make demo" in quickstart
    assert "make test" in quickstart
