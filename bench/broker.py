"""The broker a bench script talks to: one given by ``--bootstrap``, or a local one of its own."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from hhar_stream.daemons import free_port
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def bench_broker(stack: ExitStack, work: Path, bootstrap: str | None) -> Settings:
    """Settings for `bootstrap` when given; else a broker started on free ports with its files
    in `work`, stopped when `stack` closes (the project's jars in the repository's home)."""
    base = Settings(home=REPO / ".hhar")
    if bootstrap:
        return base.model_copy(update={"bootstrap": bootstrap})
    local = LocalKafka(
        base.model_copy(update={"kafka_port": free_port(), "kafka_controller_port": free_port()}),
        run_dir=work / "kafka",
    )
    local.up()
    stack.callback(local.down)
    return base.model_copy(update={"bootstrap": local.bootstrap})
