"""hhar-stream: a Kafka-backed HHAR sensor simulator and a Spark Structured Streaming processor."""

__version__ = "0.1.0"
