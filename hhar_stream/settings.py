"""All of hhar-stream's settings in one object.

Every field is read from the environment as ``HHAR_<FIELD>`` (for example ``HHAR_BOOTSTRAP``,
``HHAR_DATA``) and can be overridden by the matching command-line flag. Topic names, ports and
paths have exactly one default, here; the Makefile, docker-compose.yml and the tests read them
from this object (`hhar config`) rather than restating them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SCHEMA_VERSION = "1"

SETTING_ERROR = "hhar_setting"
"""Type of the validation errors whose message is already the whole one-line error."""


def env_var(field: str) -> str:
    """The environment variable of a setting."""
    return f"HHAR_{field.upper()}"


def _refuse(message: str) -> PydanticCustomError:
    return PydanticCustomError(SETTING_ERROR, "{message}", {"message": message})


_UNITS = {
    "ms": "millisecond",
    "millisecond": "millisecond",
    "milliseconds": "millisecond",
    "s": "second",
    "sec": "second",
    "second": "second",
    "seconds": "second",
    "m": "minute",
    "min": "minute",
    "minute": "minute",
    "minutes": "minute",
    "h": "hour",
    "hour": "hour",
    "hours": "hour",
    "d": "day",
    "day": "day",
    "days": "day",
}
_UNIT = {
    "day": dt.timedelta(days=1),
    "hour": dt.timedelta(hours=1),
    "minute": dt.timedelta(minutes=1),
    "second": dt.timedelta(seconds=1),
    "millisecond": dt.timedelta(milliseconds=1),
}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def _parse_duration(value: Any, info: ValidationInfo) -> dt.timedelta:
    """``1s``, ``500ms``, ``10 minutes``, ... (or a timedelta) as a positive timedelta."""
    if isinstance(value, dt.timedelta) and value > dt.timedelta(0):
        return value
    text = str(value)
    match = _INTERVAL.match(text.lower())
    unit = _UNITS.get(match.group(2)) if match else None
    if not match or unit is None or float(match.group(1)) <= 0:
        field = info.field_name or "duration"
        msg = f"{field} ({env_var(field)}) {text!r} is not a duration such as 1s, 500ms, 10 minutes"
        raise _refuse(msg)
    return float(match.group(1)) * _UNIT[unit]


def format_duration(duration: dt.timedelta) -> str:
    """A duration in the largest unit that says it exactly (``10 minutes``, ``500
    milliseconds``): how it is shown, and how Spark takes it."""
    for unit, size in _UNIT.items():
        count, rest = divmod(duration, size)
        if not rest and count:
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{round(duration / _UNIT['millisecond'])} milliseconds"


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(_parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A positive duration, given as ``1s``, ``500ms``, ``10 minutes``..."""


def _parse_names(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(item.strip() for item in items if item.strip())
    if not names:
        field = info.field_name or "list"
        msg = f"{field} ({env_var(field)}) names nothing"
        raise _refuse(msg)
    return names


def _join(names: tuple[str, ...]) -> str:
    return ",".join(names)


NameList = Annotated[
    tuple[str, ...],
    NoDecode,
    BeforeValidator(_parse_names),
    PlainSerializer(_join, return_type=str),
]
"""A non-empty comma-separated list of names."""

Sink = Literal["kafka", "memory", "console"]
SINKS: tuple[str, ...] = get_args(Sink)


def _parse_sinks(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    chosen = _parse_names(value, info) if value not in ("", ()) else ()
    unknown = [item for item in chosen if item not in SINKS]
    if unknown or not chosen:
        msg = (
            f"invalid sink {', '.join(unknown) or value!r} ({env_var('sink')}): "
            f"choose any of {', '.join(SINKS)}"
        )
        raise _refuse(msg)
    return tuple(sink for sink in SINKS if sink in chosen)


SinkList = Annotated[
    tuple[Sink, ...],
    NoDecode,
    BeforeValidator(_parse_sinks),
    PlainSerializer(_join, return_type=str),
]
"""Some of `SINKS`, comma-separated, kept in their canonical order."""


def _parse_paths(value: Any, info: ValidationInfo) -> tuple[Path, ...]:
    if value in (None, ""):
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(Path(str(item).strip()) for item in items if str(item).strip())


def _join_paths(paths: tuple[Path, ...]) -> str:
    return ",".join(str(path) for path in paths)


PathList = Annotated[
    tuple[Path, ...],
    NoDecode,
    BeforeValidator(_parse_paths),
    PlainSerializer(_join_paths, return_type=str),
]
"""Comma-separated paths (none when empty)."""


class Settings(BaseSettings):
    """hhar-stream's configuration (env prefix ``HHAR_``)."""

    model_config = SettingsConfigDict(env_prefix="HHAR_", frozen=True, extra="ignore")

    # --- Kafka: where and what -------------------------------------------------------------
    bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers (host:port[,host:port...])"
    )
    topic: str = Field("hhar.sensor-events", description="topic of the sensor events")
    dlq_topic: str = Field("", description="dead-letter topic (default: <topic>.dlq)")
    results_prefix: str = Field("hhar.results.", description="prefix of the result topics")
    partitions: int = Field(3, ge=1, description="partitions of topics hhar-stream creates")
    replication_factor: int = Field(1, ge=1, description="replication factor of created topics")
    min_insync_replicas: int = Field(1, ge=1, description="min.insync.replicas of created topics")
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT"] = Field(
        "PLAINTEXT", description="Kafka client security protocol"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-256", description="SASL mechanism when security_protocol is SASL_PLAINTEXT"
    )
    sasl_username: str = Field("", description="SASL user name")
    sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (never printed)")

    # --- the local broker (`hhar kafka`) ------------------------------------------------------
    home: Path = Field(
        Path(".hhar"), description="folder of the project's jars and local broker state"
    )
    kafka_port: int = Field(9092, ge=1, le=65535, description="client port of the local broker")
    kafka_controller_port: int = Field(
        9093, ge=1, le=65535, description="KRaft controller port of the local broker"
    )
    kafka_brokers: int = Field(
        1, ge=1, le=9, description="nodes of the local KRaft cluster (each broker + controller)"
    )
    kafka_heap: str = Field("512m", description="JVM heap of each local broker")
    kafka_secure: bool = Field(
        False, description="local broker with SASL/SCRAM logins and ACLs on its client port"
    )
    kafka_ready_timeout: float = Field(
        60.0, gt=0, description="seconds to wait for the local broker to answer"
    )

    # --- the local Spark standalone cluster (`hhar spark`) ------------------------------------
    spark_workers: int = Field(2, ge=1, le=8, description="workers of the local Spark cluster")
    spark_worker_cores: int = Field(1, ge=1, description="cores of each local Spark worker")
    spark_worker_memory: str = Field("1g", description="memory of each local Spark worker")
    spark_master_port: int = Field(7077, ge=1, le=65535, description="local Spark master port")
    spark_master_ui_port: int = Field(
        8080, ge=1, le=65535, description="local Spark master web UI port (workers: +1, +2...)"
    )

    # --- data ---------------------------------------------------------------------------------
    data: Path = Field(
        Path("data/activity-data"),
        description="HHAR data folder (the real activity-data folder, or a generated one)",
    )
    seed: int = Field(42, description="random seed of the data generator")
    data_url: str = Field(
        "https://raw.githubusercontent.com/databricks/Spark-The-Definitive-Guide/master/"
        "data/activity-data",
        description="where hhar data fetch gets the real activity-data set: the URL of the "
        "folder of its files (http, https, file://) or a local folder holding them",
    )
    uci_url: str = Field(
        "https://archive.ics.uci.edu/static/public/344/heterogeneity+activity+recognition.zip",
        description="where hhar data fetch --source uci gets the UCI HHAR archive (a URL or a "
        "local file)",
    )
    fetch: bool = Field(
        False,
        description="hhar demo and compose's data-init: fetch the real set (hhar data fetch) "
        "rather than generate one",
    )

    # --- producer (`hhar produce`) -----------------------------------------------------------
    source: Path | None = Field(
        None, description="file, folder or glob to replay (default: the data folder)"
    )
    order: Literal["merged", "by-file"] = Field(
        "merged", description="replay merged across files by Arrival_Time, or file by file"
    )
    speedup: float | None = Field(
        None, gt=0, description="replay in event time, gaps divided by this factor"
    )
    rate: float | None = Field(None, gt=0, description="replay at a steady rate (events/s)")
    max_speed: bool = Field(False, description="replay as fast as possible, without pacing")
    max_gap: float | None = Field(
        None, gt=0, description="cap gaps in the recording to this many seconds (event time)"
    )
    limit: int | None = Field(None, ge=0, description="stop after this many rows")
    loop: bool = Field(False, description="replay forever, shifting time forward each pass")
    devices: int = Field(1, ge=1, description="virtual devices per recorded device")
    rebase_now: bool = Field(
        False, description="stamp each event with the time the pacing sends it (the clock)"
    )
    fail_on_invalid: bool = Field(False, description="stop at the first invalid row")
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "lz4", description="producer compression codec"
    )
    linger_ms: int = Field(20, ge=0, description="producer linger.ms (batching delay)")
    batch_size: int = Field(1_000_000, ge=1, description="producer batch.size in bytes")
    resume: bool = Field(
        False, description="continue the stopped replay of this topic and source where it left off"
    )
    state_topic: str = Field(
        "hhar.producer-state", description="compacted topic of the producer's resume positions"
    )
    commit_interval: float = Field(
        1.0, gt=0, description="seconds between the producer's transaction commits (resume points)"
    )
    workers: int = Field(
        1, ge=1, le=64, description="producer processes sharing one replay (one core each)"
    )

    # --- processor (`hhar process`) ----------------------------------------------------------
    master: str = Field("local[2]", description="Spark master URL")
    queries: str = Field("all", description="queries to run: all, or a comma-separated list")
    engine: Literal["fused", "per-query"] = Field(
        "fused",
        description="fused: one read and parse for every query, its state a delta per batch; "
        "per-query: each query its own stream and Spark state",
    )
    snapshot_interval: int = Field(
        100,
        ge=1,
        description="the fused engine snapshots its state after at most this many batches "
        "(sooner once their deltas outweigh the last snapshot)",
    )
    sink: SinkList = Field(("kafka",), description="result sinks: any of kafka,memory,console")
    trigger: Duration = Field(dt.timedelta(seconds=1), description="micro-batch trigger interval")
    available_now: bool = Field(False, description="process what is in the topic, then stop")
    max_offsets_per_trigger: int | None = Field(
        None, ge=1, description="cap of events read per micro-batch"
    )
    starting_offsets: Literal["earliest", "latest"] = Field(
        "earliest", description="where a new query starts in the events topic"
    )
    fail_on_data_loss: bool = Field(
        True, description="fail when Kafka removed events the processor had not read"
    )
    checkpoint: Annotated[str, BeforeValidator(str)] = Field(
        ".hhar/checkpoints",
        description="checkpoint root, one folder per streaming query: a local folder, or a "
        "Hadoop URI (hdfs://..., s3a://...) that every Spark node reaches",
    )
    query_file: PathList = Field(
        (),
        description="SQL files (or folders of *.sql files) of named continuous queries that "
        "hhar process runs beside the built-in ones, comma-separated",
    )
    history: Path | None = Field(
        None, description="static history for live_vs_historical (default: the data folder)"
    )
    shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions")
    state_store: Literal["hdfs", "rocksdb"] = Field(
        "hdfs",
        description="Spark's state store of the per-query engine: hdfs (in executor memory) or "
        "rocksdb (on executor disk, changelog checkpointing)",
    )
    driver_memory: str = Field("2g", description="Spark driver memory")
    executor_memory: str = Field(
        "1g", description="memory of each Spark executor on a cluster (at most a worker's)"
    )
    spark_ivy_dir: Path | None = Field(
        None, description="Ivy cache for spark.jars.packages when the local jar folder is absent"
    )
    window: Duration = Field(
        dt.timedelta(minutes=10), description="tumbling window of windowed_activity"
    )
    watermark: Duration = Field(
        dt.timedelta(minutes=5), description="watermark delay of windowed_activity"
    )
    stairs_users: NameList = Field(("a", "b"), description="users counted by stairs_by_user")
    stairs_device: str = Field("nexus4_1", description="device counted by stairs_by_user")
    spark_ui: bool = Field(
        False, description="Spark's web UI, with its Structured Streaming tab (hhar process)"
    )
    spark_ui_port: int = Field(
        4040, ge=1, le=65535, description="port of Spark's web UI (the next free one if taken)"
    )

    # --- the dashboard (`hhar dashboard`) -----------------------------------------------------
    dashboard_host: str = Field(
        "127.0.0.1", description="address the dashboard listens on (0.0.0.0: every interface)"
    )
    dashboard_port: int = Field(8050, ge=1, le=65535, description="port of the dashboard")

    # --- Prometheus metrics (`hhar produce`, `hhar process`, `hhar dashboard`) -----------------
    producer_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the producer's Prometheus /metrics (unset: off)"
    )
    processor_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the processor's Prometheus /metrics (unset: off)"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="address the producer's and processor's /metrics listen on (0.0.0.0: every "
        "interface)",
    )
    metrics_linger: float = Field(
        30.0,
        ge=0,
        description="seconds a producer or processor that ended by itself waits for Prometheus' "
        "last scrape of its final figures (when it was scraped before)",
    )
    dashboard_metrics: bool = Field(
        False, description="Prometheus metrics at the dashboard's /metrics (on its own port)"
    )

    # --- people -------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")

    @field_validator("bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                msg = f"bootstrap server {server.strip()!r} is not host:port"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _check_pacing(self) -> Settings:
        if (self.speedup is not None) + (self.rate is not None) + self.max_speed > 1:
            msg = "choose one pacing: speedup, rate or max_speed"
            raise ValueError(msg)
        return self

    def changed(self, **updates: Any) -> Settings:
        """A copy with `updates`, validated as settings are (``window="30 seconds"`` becomes a
        duration, a bad value the same error); the environment is not read again."""
        return type(self)(**(self.model_dump() | updates))

    def environment(self, *fields: str) -> dict[str, str]:
        """`fields` as the ``HHAR_*`` variables a child process reads them from, written as a
        person would (``1 second``, ``a,b``); secrets revealed (that is how a child gets
        them); unset fields left out. A copy made without validation (`model_copy`) may hold
        a `Path` where a text is due: it is written as text all the same."""
        values = self.model_dump(mode="json", include=set(fields), warnings=False)
        for field in fields:
            secret = getattr(self, field)
            if isinstance(secret, SecretStr):
                values[field] = secret.get_secret_value()
        return {env_var(field): str(values[field]) for field in fields if values[field] is not None}

    # --- derived values -----------------------------------------------------------------------
    @property
    def dead_letter_topic(self) -> str:
        """The dead-letter topic: dlq_topic, or ``<topic>.dlq``."""
        return self.dlq_topic or f"{self.topic}.dlq"

    def result_topic(self, query: str) -> str:
        """The Kafka topic that holds the results of one query."""
        return f"{self.results_prefix}{query}"

    @property
    def query_definitions_topic(self) -> str:
        """The compacted topic where the processor publishes its named queries' definitions."""
        return f"{self.results_prefix}_definitions"

    @property
    def kafka_libs(self) -> Path:
        """Folder of the Kafka broker and tools jars (filled by ``make setup``)."""
        return self.home / "kafka" / "libs"

    @property
    def spark_jars(self) -> Path:
        """Folder of Spark's Kafka connector jars (filled by ``make setup``)."""
        return self.home / "spark-jars"

    @property
    def log_dir(self) -> Path:
        """Folder of the logs hhar keeps off the terminal (Spark's own log)."""
        return self.home / "logs"

    @property
    def kafka_run_dir(self) -> Path:
        """Folder of the local broker's config, data, logs and pid."""
        return self.home / "kafka" / "run"

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every client (secrets revealed only here).

        librdkafka's own log lines go to the Python logger ``librdkafka`` (shown with
        ``--log-level DEBUG``): its connection retries are noise next to hhar's own errors.
        """
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "logger": logging.getLogger("librdkafka"),
        }
        if self.security_protocol != "PLAINTEXT":
            config |= {
                "security.protocol": self.security_protocol,
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password.get_secret_value(),
            }
        return config

    def spark_kafka_options(self) -> dict[str, str]:
        """Options of Spark's Kafka source and sink for the same cluster and credentials."""
        options = {"kafka.bootstrap.servers": self.bootstrap}
        if self.security_protocol != "PLAINTEXT":
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.sasl_mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            user = self.sasl_username.replace('"', '\\"')
            password = self.sasl_password.get_secret_value().replace('"', '\\"')
            options |= {
                "kafka.security.protocol": self.security_protocol,
                "kafka.sasl.mechanism": self.sasl_mechanism,
                "kafka.sasl.jaas.config": (
                    f'{module} required username="{user}" password="{password}";'
                ),
            }
        return options
