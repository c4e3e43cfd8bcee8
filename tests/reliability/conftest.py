"""Fixtures of the reliability tests: the ledger of what each scenario measured.

Every scenario records its numbers (faults injected, rows expected, seen, lost, duplicated)
in the session's `Ledger` before it asserts, so a failing run is reported with its numbers
too. The ledger is printed at the end of the test run; with
``HHAR_RELIABILITY_REPORT=<file>`` it is also written there as JSON, and with
``HHAR_RELIABILITY_DOC=RELIABILITY.md`` its table replaces the one between that document's
markers (`make reliability` does both).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field

import pytest

REPORT_VARIABLE = "HHAR_RELIABILITY_REPORT"
DOC_VARIABLE = "HHAR_RELIABILITY_DOC"
TABLE_START, TABLE_END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"


@dataclass
class ScenarioRun:
    """What one run of a scenario measured."""

    scenario: str
    trials: int
    """Faults injected in this run (kills, outages, poison messages, fuzzed lines...)."""
    expected: int
    seen: int
    lost: int
    duplicated: int
    note: str = ""

    @property
    def outcome(self) -> str:
        """``exact`` when nothing was lost or duplicated."""
        return "exact" if self.lost == 0 and self.duplicated == 0 else "NOT EXACT"


@dataclass
class Ledger:
    """The scenario runs of this test run."""

    runs: list[ScenarioRun] = field(default_factory=list)

    def record(
        self,
        scenario: str,
        trials: int,
        expected: int,
        seen: int,
        lost: int,
        duplicated: int,
        note: str = "",
    ) -> ScenarioRun:
        """Add what one run of a scenario measured (temporary paths in `note` become <tmp>)."""
        note = re.sub(re.escape(tempfile.gettempdir()) + r"/\S*", "<tmp>", note)
        run = ScenarioRun(scenario, trials, expected, seen, lost, duplicated, note)
        self.runs.append(run)
        return run

    def table(self) -> str:
        """The runs as a Markdown table."""
        lines = [
            "| scenario | trials | rows expected | rows seen | lost | duplicated | outcome "
            "| note |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        lines += [
            f"| {run.scenario} | {run.trials} | {run.expected:,} | {run.seen:,} | {run.lost} "
            f"| {run.duplicated} | {run.outcome} | {run.note} |"
            for run in self.runs
        ]
        return "\n".join(lines)


_LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    """The session's ledger."""
    return _LEDGER


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's reporter
    """Print the ledger, and write it as JSON when HHAR_RELIABILITY_REPORT names a file."""
    if not _LEDGER.runs:
        return
    terminalreporter.section("reliability scenarios")
    terminalreporter.write_line(_LEDGER.table())
    path = os.environ.get(REPORT_VARIABLE)
    if path:
        rows = [asdict(run) | {"outcome": run.outcome} for run in _LEDGER.runs]
        with open(path, "w") as report:
            json.dump(rows, report, indent=2)
    document = os.environ.get(DOC_VARIABLE)
    if document:
        with open(document) as text:
            before, start, rest = text.read().partition(TABLE_START)
        _, end, after = rest.partition(TABLE_END)
        if not (start and end):
            terminalreporter.write_line(f"{document} has no {TABLE_START} ... {TABLE_END}")
            return
        with open(document, "w") as text:
            text.write(f"{before}{TABLE_START}\n{_LEDGER.table()}\n{TABLE_END}{after}")
