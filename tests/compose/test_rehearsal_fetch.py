"""compose's data-init rehearsed alone. With ``HHAR_FETCH=1`` it fetches the real set's files
instead of generating a set, from the tests' server of a replica (``HHAR_DATA_URL``, as a user
points it at a mirror), into the folder the producer and the processor mount, and checks it;
without, it generates one."""

from __future__ import annotations

from pathlib import Path

from support.polling import poll_until
from support.replica import ReplicaServer, files_of, write_replica

from hhar_stream.dataset import real
from hhar_stream.dataset.check import identify

from .project import COMPOSE_FILE, REPO_ROOT, ComposeProject
from .rehearsal import Rehearsal


def run_data_init(variables: dict[str, str], workdir: Path) -> tuple[Rehearsal, Path]:
    """`docker compose run data-init` with a user's `variables`, to its end; the rehearsal and
    the folder the producer reads."""
    project = ComposeProject.load(COMPOSE_FILE, variables)
    rehearsal = Rehearsal(project, workdir, home=REPO_ROOT / ".hhar")
    try:
        rehearsal.run("data-init")
        poll_until(lambda: rehearsal.returncode("data-init") is not None, 120, "data-init")
    finally:
        rehearsal.down()
    assert rehearsal.leftovers() == []
    producer = rehearsal.container(project.services["producer"])
    return rehearsal, Path(producer.host_path("/data/activity-data"))


def test_data_init_fetches_the_real_set_with_hhar_fetch(tmp_path: Path) -> None:
    replica = write_replica(tmp_path / "replica" / "activity-data")
    with ReplicaServer(replica) as server:
        variables = {"HHAR_FETCH": "1", "HHAR_DATA_URL": server.url, "SYNTH_ROWS": "5000"}
        rehearsal, data = run_data_init(variables, tmp_path / "rehearsal")
    log = rehearsal.log("data-init")
    # Every file of the set arrived whole where the producer reads it; nothing was generated.
    assert files_of(data) == files_of(replica), log
    assert "fetched 83 files" in log
    assert "generating" not in log
    # The check ran: the replica has the real set's names, not its rows, so data-init fails
    # (compose would not start the producer on it).
    assert "ok   entries: 83: the 80 part files and 3 markers of the real set, by name" in log
    assert f"FAIL rows: 1,600 in all; the real set has {real.REAL_ROWS:,}" in log
    assert log.rstrip().splitlines()[-1].startswith(f"{data} does not hold the real set, whole")
    assert rehearsal.returncode("data-init") == 1


def test_data_init_generates_a_set_without_hhar_fetch(tmp_path: Path) -> None:
    rehearsal, data = run_data_init({"SYNTH_ROWS": "2000"}, tmp_path / "rehearsal")
    assert rehearsal.returncode("data-init") == 0, rehearsal.log("data-init")
    assert identify(data).kind == "generated"
