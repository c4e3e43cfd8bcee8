"""Scenario 6: bad configuration. Each case runs `hhar` as a user would and must end within
15 s, non-zero, with one clear ``error:`` line on stderr and no traceback. A case found before
anything is read or sent must print that line and nothing else; a case found later may follow
hhar's own log lines (``HH:MM:SS LEVEL logger: ...``).

tests/test_producer/test_cli.py already covers an unreachable broker for `hhar produce` and
its invalid pacing settings; tests/test_processor/test_process_cli.py a missing history.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.cli import HharProcess, error_line, hhar_env
from test_processor.helpers import make_events, produce
from test_producer.helpers import write_part_files

from hhar_stream.daemons import free_port
from hhar_stream.settings import Settings

from .processing import PROCESSOR_FIELDS, available_now_run, processor_settings

LIMIT_SECONDS = 15.0


@dataclass(frozen=True)
class Case:
    """One bad configuration: the command, extra environment, and the expected end."""

    args: tuple[str, ...]
    code: int
    message: str
    """How the error line starts ({placeholders} as in `Places`)."""
    env: dict[str, str] = field(default_factory=dict)
    before_io: bool = True
    """Found before anything is read or sent: the error line is all of stderr."""
    mentions: tuple[str, ...] = ()
    """What else the error line must name."""


@dataclass(frozen=True)
class Places:
    """Values of the cases' {placeholders}."""

    bootstrap: str
    unused: str
    """host:port where nothing listens."""
    data: Path
    empty: Path
    empty_file: Path
    corrupt: Path
    topic: str

    def fill(self, text: str) -> str:
        """`text` with its placeholders replaced."""
        return text.format(**{name: str(value) for name, value in vars(self).items()})


CASES = {
    "process: unreachable bootstrap": Case(
        ("process", "--queries", "total_count", "--bootstrap", "{unused}"),
        1,
        "error: cannot reach Kafka at {unused}: ",
    ),
    "watch: unreachable bootstrap": Case(
        ("watch", "--once", "--bootstrap", "{unused}"), 1, "error: cannot reach Kafka at {unused}: "
    ),
    "produce: unresolvable bootstrap": Case(
        ("produce", "--source", "{data}", "--max", "--bootstrap", "no-such-host.invalid:9092"),
        1,
        "error: cannot reach Kafka at no-such-host.invalid:9092: ",
    ),
    "process: missing topic (auto-creation off), available-now": Case(
        (
            "process",
            "--available-now",
            "--queries",
            "total_count",
            "--topic",
            "{topic}.missing",
            "--bootstrap",
            "{bootstrap}",
        ),
        1,
        "error: topic '{topic}.missing' does not exist at {bootstrap}: produce events first",
    ),
    "produce: source folder without data files": Case(
        ("produce", "--source", "{empty}", "--max", "--bootstrap", "{unused}"),
        1,
        "error: no data files in {empty} (looked for .json",
    ),
    "produce: unreadable source (corrupt gzip)": Case(
        (
            "produce",
            "--source",
            "{corrupt}",
            "--max",
            "--topic",
            "{topic}.events",
            "--state-topic",
            "{topic}.state",
            "--bootstrap",
            "{bootstrap}",
        ),
        1,
        "error: cannot read part-00000.json.gz: ",
        before_io=False,
    ),
    "produce: HHAR_PARTITIONS=0": Case(
        ("produce", "--source", "{data}", "--max"),
        2,
        "error: invalid setting partitions (HHAR_PARTITIONS): Input should be greater than or "
        "equal to 1",
        env={"HHAR_PARTITIONS": "0"},
    ),
    "process: HHAR_BOOTSTRAP without a port": Case(
        ("process",),
        2,
        "error: invalid setting bootstrap (HHAR_BOOTSTRAP): Value error, bootstrap server "
        "'kafka' is not host:port",
        env={"HHAR_BOOTSTRAP": "kafka"},
    ),
    "process: --trigger soon": Case(
        ("process", "--trigger", "soon"),
        2,
        "error: trigger (HHAR_TRIGGER) 'soon' is not a duration such as 1s, 500ms, 10 minutes",
    ),
    "process: unknown query": Case(
        ("process", "--queries", "all,total"),
        2,
        "error: unknown query 'total' in queries (HHAR_QUERIES): choose all or any of ",
    ),
    "process: unknown sink": Case(
        ("process", "--sink", "kafka,disk"),
        2,
        "error: invalid sink ",
        mentions=("disk", "HHAR_SINK", "kafka, memory, console"),
    ),
    "watch: --interval 0": Case(
        ("watch", "--interval", "0", "--bootstrap", "{unused}"),
        2,
        "error: --interval must be positive",
    ),
    "any command: HHAR_LOG_LEVEL=LOUD": Case(
        ("produce", "--source", "{data}", "--max"),
        2,
        "error: invalid setting log_level (HHAR_LOG_LEVEL): Input should be 'DEBUG', 'INFO', "
        "'WARNING' or 'ERROR'",
        env={"HHAR_LOG_LEVEL": "LOUD"},
    ),
    "produce: empty source file": Case(
        (
            "produce",
            "--source",
            "{empty_file}",
            "--max",
            "--topic",
            "{topic}.events",
            "--state-topic",
            "{topic}.state",
            "--bootstrap",
            "{bootstrap}",
        ),
        1,
        "error: the source {empty_file} holds no rows",
        before_io=False,
    ),
    "produce: --partitions abc": Case(
        ("produce", "--source", "{data}", "--partitions", "abc"),
        2,
        "error: argument --partitions: invalid int value: 'abc'",
        mentions=("hhar produce --help",),
    ),
}


@pytest.fixture(scope="module")
def places(kafka: Settings, module_topics, tmp_path_factory: pytest.TempPathFactory):
    """The files and names the cases use; topics they create are deleted afterwards."""
    root = tmp_path_factory.mktemp("bad-configuration")
    [data] = write_part_files(root / "data", files=1, rows_per_file=20)
    (root / "empty").mkdir()
    (root / "empty" / "_SUCCESS").write_text("")
    (root / "empty-file").mkdir()
    (root / "empty-file" / "part-00000.json").write_bytes(b"")
    corrupt = root / "corrupt"
    corrupt.mkdir()
    (corrupt / "part-00000.json.gz").write_bytes(gzip.compress(data.read_bytes())[:200])
    yield Places(
        bootstrap=kafka.bootstrap,
        unused=f"127.0.0.1:{free_port()}",
        data=data,
        empty=root / "empty",
        empty_file=root / "empty-file",
        corrupt=corrupt,
        topic=module_topics.name("reliability-bad-config"),
    )


def run_case(case: Case, places: Places, workdir: Path) -> tuple[HharProcess, int]:
    """Run one case to its end; the process and its exit code."""
    env = hhar_env(HHAR_BOOTSTRAP=places.unused) | {
        name: places.fill(value) for name, value in case.env.items()
    }
    process = HharProcess([places.fill(arg) for arg in case.args], env, workdir, "hhar")
    return process, process.wait(60)


def check_case(case: Case, places: Places, workdir: Path, ledger, name: str) -> None:
    """Run a case and check how it ended."""
    process, code = run_case(case, places, workdir)
    stderr = process.stderr
    first_line = stderr.splitlines()[-1] if stderr else "(nothing on stderr)"
    ledger.record(
        f"6. {name}", 1, 0, 0, 0, 0, f"exit {code} in {process.seconds:.1f} s: {first_line[:100]}"
    )
    assert code == case.code, stderr[-3000:]
    assert process.seconds < LIMIT_SECONDS
    line = error_line(stderr)
    assert line.startswith(places.fill(case.message)), line
    assert all(places.fill(word) in line for word in case.mentions), line
    if case.before_io:
        assert stderr == line + "\n"
    assert process.stdout == ""


@pytest.mark.kafka
@pytest.mark.parametrize("name", list(CASES))
def test_bad_configuration_ends_in_one_clear_line(name, places, tmp_path, ledger) -> None:
    check_case(CASES[name], places, tmp_path, ledger, name)


def refused_checkpoint(
    settings: Settings, args: list[str], tmp_path: Path, ledger, scenario: str
) -> str:
    """Run `hhar process --available-now` with `args` on a checkpoint it must refuse; its one
    error line (the 15 s bound of the other refusals cannot hold: Spark has to start before it
    can read the checkpoint)."""
    process = HharProcess(
        ["process", "--available-now", *args],
        hhar_env(settings, PROCESSOR_FIELDS),
        tmp_path,
        "process",
    )
    code = process.wait(300)
    stderr = process.stderr
    last = stderr.splitlines()[-1][:100] if stderr else ""
    ledger.record(scenario, 1, 0, 0, 0, 0, f"exit {code} in {process.seconds:.1f} s: {last}")
    assert code == 1, stderr[-3000:]
    return error_line(stderr)


@pytest.mark.kafka
@pytest.mark.spark
@pytest.mark.slow
def test_a_checkpoint_of_another_query_is_one_error_line(
    kafka: Settings, spark, topics, tmp_path: Path, ledger
) -> None:
    """The checkpoint folder of windowed_activity copied where the fused query keeps its own:
    `hhar process` must refuse it in one line."""
    topic = topics.create("reliability-foreign-checkpoint")
    settings = processor_settings(
        kafka, tmp_path, topic, queries="windowed_activity", engine="per-query"
    )
    produce(settings, settings.topic, make_events(60, seed=61))
    _, error = available_now_run(spark, settings)
    assert error is None, error
    foreign = tmp_path / "foreign-checkpoints"
    shutil.copytree(Path(settings.checkpoint) / "windowed_activity", foreign / "fused")
    line = refused_checkpoint(
        settings,
        ["--queries", "total_count", "--checkpoint", str(foreign)],
        tmp_path,
        ledger,
        "6. process: checkpoint of another query",
    )
    assert line == (
        f"error: query fused cannot start: its checkpoint {foreign / 'fused'} belongs "
        f"to query windowed_activity; choose another --checkpoint, or start over "
        f"with --reset"
    ), line


@pytest.mark.kafka
@pytest.mark.spark
@pytest.mark.slow
def test_a_checkpoint_of_the_earlier_fused_engine_is_one_error_line(
    kafka: Settings, spark, topics, tmp_path: Path, ledger
) -> None:
    """The fused engine of earlier versions kept Spark state in its ``fused`` folder; the
    engine now keeps its own and cannot continue from it: one line that names --reset."""
    topic = topics.create("reliability-old-fused-checkpoint")
    settings = processor_settings(kafka, tmp_path, topic, queries="total_count", engine="per-query")
    produce(settings, settings.topic, make_events(60, seed=62))
    _, error = available_now_run(spark, settings)
    assert error is None, error
    old = tmp_path / "old-checkpoints"
    # What the earlier fused engine left: Spark's logs and state, claimed by "fused".
    shutil.copytree(Path(settings.checkpoint) / "total_count", old / "fused")
    (old / "fused" / "hhar-query").write_text("fused\n")
    line = refused_checkpoint(
        settings,
        ["--checkpoint", str(old)],
        tmp_path,
        ledger,
        "6. process: checkpoint of the earlier fused engine",
    )
    assert line == (
        f"error: query fused cannot start: its checkpoint {old / 'fused'} was written by the "
        f"fused engine of an earlier hhar-stream (Spark state; the engine now keeps its own): "
        f"start over with --reset"
    ), line
