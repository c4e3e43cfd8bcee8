"""`docker compose up` rehearsed on this machine (no Docker engine): the default profile's
services as local processes in the compose file's order (the processor with the named queries
of the repository's ./queries), then what a user would look at.

A user's variables make the run short: ``SYNTH_ROWS`` (data-init generates a small data set)
and ``HHAR_SPEEDUP`` (the producer replays its day of event time in seconds). Everything else
is the compose file's own. The rehearsal's broker checks retention every second, so events
that the topic configs leave to time-based retention are gone long before the checks below.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from pathlib import Path

import pytest
from reliability.harness import read_messages
from reliability.processing import (
    assert_results_equal_batch,
    emitted_watermark,
    last_committed,
    logged_offsets,
    open_batch,
)
from support.polling import poll_until
from support.prometheus import sample_values, scrape

from hhar_stream.errors import InputDataError
from hhar_stream.kafka_client import (
    definitions_topic_spec,
    full_config,
    list_topics,
    result_topic_specs,
    topic_configs,
    topic_specs,
    watermark_offsets,
)
from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.processor.check import check_query
from hhar_stream.processor.named import NAMED_FOLDER, read_definitions
from hhar_stream.processor.sql import parse_query_files
from hhar_stream.processor.status import read_status
from hhar_stream.settings import Settings

from .monitoring import scrape_targets
from .project import COMPOSE_FILE, REPO_ROOT, ComposeProject
from .rehearsal import RETENTION_CHECK_MS, Rehearsal

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

ROWS = 20_000
USER_VARIABLES = {"SYNTH_ROWS": str(ROWS), "HHAR_SPEEDUP": "5000"}
START_TIMEOUT = 240.0
"""Seconds for the services to start, and for the producer's replay (a busy 2-core machine)."""
CATCH_UP_TIMEOUT = 300.0
"""Seconds for the processor (Spark's start, the connector's resolution) to process it all."""
IVY_CACHE = REPO_ROOT / ".hhar" / "compose-volumes"
"""Named volumes that outlive a run, as Docker keeps them: the processor's Ivy cache (Spark's
Kafka connector, resolved from ~/.m2 and Maven Central on the first run only)."""


def readme_docker_commands(verb: str) -> list[list[str]]:
    """The ``docker compose VERB ...`` lines of README.md's Docker section, as arguments after
    the verb."""
    section = (REPO_ROOT / "README.md").read_text().split("\n## Docker\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, re.S | re.M)
    commands = []
    for line in "".join(blocks).splitlines():
        words = shlex.split(line, comments=True)
        if words[:3] == ["docker", "compose", verb]:
            commands.append(words[3:])
    return commands


def watched(log: str) -> int | None:
    """The events (counted + bad) in the last status line of `hhar watch`."""
    counts = re.findall(r"counted (\d+) \+ (\d+) bad", log)
    return sum(map(int, counts[-1])) if counts else None


def caught_up(settings: Settings) -> bool:
    """Each streaming query of the processor (its status file names them, the named ones
    too) has committed a batch that read the events topic to its end and started no other;
    the window query's watermark has moved past the start (its windows closed)."""
    try:
        queries = read_status(settings)["queries"]
    except InputDataError:
        return False
    ends = {p: end for p, (_, end) in watermark_offsets(settings, settings.topic).items()}
    for name, query in queries.items():
        root = Path(settings.checkpoint)
        folder = root / NAMED_FOLDER / name if query.get("named") else root / name
        batch = last_committed(folder)
        if batch < 0 or open_batch(folder) is not None:
            return False
        if logged_offsets(folder, batch, settings.topic) != ends:
            return False
    return not emitted_watermark(Path(settings.checkpoint)).startswith("1970")


def named(samples: dict, name: str) -> list[float]:
    """The values of the samples called `name` (any labels)."""
    return [value for (sample, _), value in samples.items() if sample == name]


def per_query(samples: dict, name: str) -> dict[str, float]:
    """Query label -> value, of the samples called `name`."""
    return {
        dict(labels)["query"]: value
        for (sample, labels), value in samples.items()
        if sample == name
    }


def test_docker_compose_up(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    project = ComposeProject.load(COMPOSE_FILE, USER_VARIABLES)
    # Inside the rehearsal every service's container is this machine.
    metrics_at = {
        host: f"127.0.0.1:{port}" for jobs in scrape_targets().values() for host, port in jobs
    }
    rehearsal = Rehearsal(
        project,
        tmp_path,
        home=REPO_ROOT / ".hhar",
        kept_volumes={"ivy-cache": IVY_CACHE / "ivy-cache"},
    )

    def running(condition) -> bool:
        rehearsal.check()  # a service that failed ends the wait with its log
        return condition()

    try:
        rehearsal.up(timeout=START_TIMEOUT)
        # Scraped as the monitoring profile's Prometheus scrapes it, until its replay ends: a
        # producer that was scraped waits for a last scrape of its final figures.
        scrapes: dict[str, dict] = {}

        def replay_ended() -> bool:
            if rehearsal.returncode("producer") is not None:
                return True
            with contextlib.suppress(OSError):  # not serving yet, or just gone
                scrapes["producer"] = sample_values(scrape(metrics_at["producer"])[0])
            return False

        poll_until(
            lambda: running(replay_ended),
            START_TIMEOUT,
            lambda: f"the replay ended:\n{rehearsal.log_tail('producer')}",
            interval=1.0,
        )
        assert rehearsal.returncode("producer") == 0, rehearsal.log_tail("producer")
        replayed_at = time.monotonic()

        settings = rehearsal.settings_of("processor")
        poll_until(
            lambda: running(lambda: caught_up(settings)),
            CATCH_UP_TIMEOUT,
            lambda: f"the processor caught up:\n{rehearsal.log_tail('processor')}",
            interval=1.0,
        )

        # Nothing data-init wrote was deleted or lost: the topics still start at offset 0, at
        # least three retention checks after the replay (the processor may catch up sooner:
        # the checks are waited for), and every row is an event or a dead letter.
        time.sleep(max(0.0, 3 * RETENTION_CHECK_MS / 1000 - (time.monotonic() - replayed_at)))
        for topic in (settings.topic, settings.dead_letter_topic):
            earliest = {p: low for p, (low, _) in watermark_offsets(settings, topic).items()}
            assert set(earliest.values()) == {0}, f"Kafka deleted records of {topic}: {earliest}"
        events = read_messages(settings, settings.topic)
        dead_letters = read_messages(settings, settings.dead_letter_topic)
        assert len(events) + len(dead_letters) == ROWS

        # The monitoring profile's targets serve what the services did (test_monitoring.py
        # checks the profile's files): the producer's last figures, the processor caught up,
        # the dashboard reaching Kafka.
        assert "waiting up to" in rehearsal.log("producer"), "Prometheus' scrapes were missed"
        produced = scrapes["producer"]
        assert named(produced, "hhar_producer_events_delivered_total") == [len(events)]
        assert sum(named(produced, "hhar_producer_dead_letters_total")) == len(dead_letters)
        processed = sample_values(scrape(metrics_at["processor"])[0])
        # Every streaming query read every event: the engine's and each named query's.
        streams = ["fused", *(s.name for s in parse_query_files([REPO_ROOT / "queries"]))]
        read = per_query(processed, "hhar_processor_input_rows_total")
        assert read == dict.fromkeys(streams, len(events))
        assert per_query(processed, "hhar_processor_lag_events") == dict.fromkeys(streams, 0)
        shown = sample_values(scrape(metrics_at["dashboard"])[0])
        assert named(shown, "hhar_dashboard_kafka_up") == [1]
        # The topics and the processor's progress outlive their containers.
        processor = rehearsal.running["processor"].container
        assert processor.volume_of(Path(settings.checkpoint)), "the checkpoints are on no volume"
        for broker in rehearsal.brokers:
            for folder in rehearsal.broker_data(broker):
                assert rehearsal.running[broker].container.volume_of(folder), (
                    f"{broker} keeps its topics in {folder}, on no volume"
                )
        assert any(
            (folder / f"{settings.topic}-0").is_dir()
            for broker in rehearsal.brokers
            for folder in rehearsal.broker_data(broker)
        )

        # The named queries of ./queries ran, each publishing its definition.
        definitions = read_definitions(settings)
        wanted = [s.name for s in parse_query_files([REPO_ROOT / "queries"])]
        assert wanted and sorted(definitions) == sorted(wanted), definitions

        # The topics are exactly those the code declares, with the code's configs.
        specs = (
            topic_specs(settings)
            | result_topic_specs(settings, [*CATALOGUE, *definitions])
            | definitions_topic_spec(settings)
        )
        assert {t for t in list_topics(settings) if not t.startswith("__")} == set(specs)
        for name, configs in topic_configs(settings, specs).items():
            wanted = full_config(settings, specs[name])
            assert {key: configs[key] for key in wanted} == wanted, name

        # The README's `docker compose run --rm SERVICE`s run; `hhar watch` counts every event.
        runs = [
            next(word for word in run if not word.startswith("-"))
            for run in readme_docker_commands("run")
        ]
        watchers = [
            name for name in runs if project.services[name].command[:2] == ["hhar", "watch"]
        ]
        assert watchers, "README shows no docker compose run of hhar watch"
        for service in runs:
            rehearsal.run(service)
        for service in watchers:
            poll_until(
                lambda s=service: running(lambda: watched(rehearsal.log(s)) == len(events)),
                60,
                lambda s=service: f"{s} counted {len(events)} events:\n{rehearsal.log_tail(s)}",
            )
        # The README's commands inside a container (the console consumer in kafka) work.
        execs = readme_docker_commands("exec")
        assert execs, "README shows no docker compose exec command"
        for service, *argv in execs:
            result = rehearsal.exec(service, argv)
            assert result.returncode == 0 and result.stdout.strip(), result.stderr[-2000:]

        assert rehearsal.stop("processor") == 0, rehearsal.log_tail("processor")
        spark = request.getfixturevalue("spark")  # started now: the processor's JVM is gone
        assert_results_equal_batch(spark, settings, emitted_watermark(Path(settings.checkpoint)))
        for definition in definitions.values():  # what hhar queries check does
            checked = check_query(spark, settings, definition)
            assert checked.equal and checked.rows, checked.details()
    finally:
        rehearsal.down()
    assert rehearsal.leftovers() == []
