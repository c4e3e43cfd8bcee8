"""The one place a SparkSession is built, with Spark's Kafka connector on its classpath."""

from __future__ import annotations

import logging
import os

import pyspark
from pyspark.sql import SparkSession

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


def build_session(settings: Settings, app_name: str = "hhar-stream") -> SparkSession:
    """Build (or return the running) SparkSession for `settings`.

    The connector comes from the local jar folder when `make setup` filled it, otherwise
    from ``spark.jars.packages`` (which needs Maven Central or a filled ``~/.m2``).
    Jar settings only take effect for the first session of a process.
    """
    builder = (
        SparkSession.builder.master(settings.master)
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.executor.memory", settings.executor_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        # The validation of parse_events makes one generated method of more than 8000 bytes
        # of bytecode, which HotSpot would otherwise never compile: interpreted, it is slow.
        .config("spark.driver.extraJavaOptions", f"{_JIT_HUGE_METHODS} {_DRIVER_THREAD_STACK}")
        .config("spark.executor.extraJavaOptions", _JIT_HUGE_METHODS)
    )
    if settings.master.startswith("local") or "127.0.0.1" in settings.master:
        # A local run talks over loopback only, whatever the machine's hostname resolves to.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    jars = connector_jars(settings)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        builder = builder.config("spark.jars.packages", connector_package())
        if settings.spark_ivy_dir is not None:
            builder = builder.config("spark.jars.ivy", str(settings.spark_ivy_dir.resolve()))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
