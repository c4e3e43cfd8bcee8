"""The one place a SparkSession is built, with Spark's Kafka connector on its classpath.

Spark's own output stays off the terminal: the driver logs with the project's log4j2
configuration (`LOG4J2_CONFIG`, warnings and errors), and the JVM's stderr (its log, the JVM's
own start-up warnings) goes to ``<home>/logs/<app name>.log`` (`spark_log_path`);
``--log-level DEBUG`` leaves it on the terminal. Spark's web UI is off unless
``HHAR_SPARK_UI`` asks for it.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import pyspark
from pyspark import SparkConf, SparkContext
from pyspark.errors import PySparkRuntimeError
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from ..errors import ConfigError
from ..settings import Settings

logger = logging.getLogger(__name__)

SCALA_BINARY_VERSION = "2.13"

_JIT_HUGE_METHODS = "-XX:-DontCompileHugeMethods"
_DRIVER_THREAD_STACK = "-Xss16m"
"""Stack of the driver's threads. When a ``foreachBatch`` call fails or is interrupted (a stop
during a micro-batch), Spark tells an interruption from an error by matching the Python
traceback against ``Py4JJavaError: An error occurred while calling((.|\\r\\n|\\r|\\n)*)...``
(StreamExecution.PROXY_ERROR): Java's regex engine recurses once per character there, and a
traceback with a Java stack trace overflows the default 1 MB stack. The stream thread then dies
of a StackOverflowError instead of ending the query cleanly (or with its own error). Sixteen
times the default holds the tracebacks of a stop or a failed batch."""

LOG4J2_CONFIG = resources.files(__package__) / "log4j2.properties"
"""The driver's log4j2 configuration, shipped with the package."""


def connector_package() -> str:
    """Maven coordinate of the Kafka connector matching the installed pyspark."""
    return f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_BINARY_VERSION}:{pyspark.__version__}"


def connector_jars(settings: Settings) -> list[str]:
    """Absolute paths of the connector jars resolved by `make setup` (empty if absent)."""
    folder = settings.spark_jars
    if not folder.is_dir():
        return []
    jars = sorted(str(path.resolve()) for path in folder.glob("*.jar"))
    expected = f"spark-sql-kafka-0-10_{SCALA_BINARY_VERSION}-{pyspark.__version__}.jar"
    if not any(jar.endswith(expected) for jar in jars):
        logger.warning("%s lacks %s: falling back to spark.jars.packages", folder, expected)
        return []
    return jars


def spark_log_path(settings: Settings, app_name: str) -> Path:
    """Where the JVM of `app_name` writes Spark's log (unless the log level is DEBUG)."""
    return settings.log_dir / f"{app_name}.log"


def spark_conf(settings: Settings, app_name: str) -> SparkConf:
    """The Spark configuration of `settings`: master, memory, UI, logging, connector jars."""
    conf = (
        SparkConf()
        .setMaster(settings.master)
        .setAppName(app_name)
        .set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .set("spark.driver.memory", settings.driver_memory)
        .set("spark.executor.memory", settings.executor_memory)
        .set("spark.ui.enabled", str(settings.spark_ui).lower())
        .set("spark.ui.port", str(settings.spark_ui_port))
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.sql.session.timeZone", "UTC")
        .set("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        # The validation of parse_events makes one generated method of more than 8000 bytes
        # of bytecode, which HotSpot would otherwise never compile: interpreted, it is slow.
        .set(
            "spark.driver.extraJavaOptions",
            f"{_JIT_HUGE_METHODS} {_DRIVER_THREAD_STACK} "
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        )
        .set("spark.executor.extraJavaOptions", _JIT_HUGE_METHODS)
    )
    if settings.master.startswith("local") or "127.0.0.1" in settings.master:
        # A local run talks over loopback only, whatever the machine's hostname resolves to.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        conf.set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
    jars = connector_jars(settings)
    if jars:
        conf.set("spark.jars", ",".join(jars))
    else:
        conf.set("spark.jars.packages", connector_package())
        if settings.spark_ivy_dir is not None:
            conf.set("spark.jars.ivy", str(settings.spark_ivy_dir.resolve()))
    return conf


def _start_jvm(conf: SparkConf, log: Path) -> None:
    """Start Spark's JVM with its stderr appended to `log`, for the SparkContext to come."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stderr:
        try:
            # pyspark's launch_gateway has no annotations (the one untyped call we make).
            gateway = launch_gateway(conf, popen_kwargs={"stderr": stderr})  # type: ignore[no-untyped-call]
        except PySparkRuntimeError:
            lines = log.read_text(errors="replace").strip().splitlines()
            msg = f"Spark's JVM did not start: {lines[-1] if lines else 'no output'} (see {log})"
            raise ConfigError(msg) from None
    SparkContext(conf=conf, gateway=gateway)


def _quiet_query_context_logs() -> None:
    """pyspark logs every SQL error that has a query context as a JSON line on stderr, from
    loggers of its own (with their own handler, not propagated): hhar reports such an error
    itself, in one line."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def build_session(settings: Settings, app_name: str = "hhar-stream") -> SparkSession:
    """Build (or return the running) SparkSession for `settings`.

    The connector comes from the local jar folder when `make setup` filled it, otherwise
    from ``spark.jars.packages`` (which needs Maven Central or a filled ``~/.m2``).
    Jar and logging settings only take effect for the first session of a process.
    """
    conf = spark_conf(settings, app_name)
    first_jvm = SparkContext._gateway is None  # noqa: SLF001 - pyspark keeps one JVM per process
    if first_jvm and settings.log_level != "DEBUG":
        log = spark_log_path(settings, app_name)
        _start_jvm(conf, log)
        logger.debug("Spark's log: %s", log)
        _quiet_query_context_logs()
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    if settings.spark_ui:
        logger.info("Spark UI at %s", spark.sparkContext.uiWebUrl)
    return spark
