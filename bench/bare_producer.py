"""The bare client loop: read a file's lines and `produce()` each, nothing else.

The reference `hhar produce` is held to: the same client (confluent-kafka), the same
compression, linger, batch size, idempotence and queue bounds as the producer's `Sender`, but no
validation, no key, no timestamp, no header, no transaction. Prints ``<lines> lines in <s> s``.

Usage: python bench/bare_producer.py BOOTSTRAP TOPIC FILE
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Producer

from hhar_stream.settings import Settings


def main() -> None:
    bootstrap, topic, path = sys.argv[1:4]
    settings = Settings(bootstrap=bootstrap)
    producer = Producer(settings.kafka_client_config() | {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": settings.compression,
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_size,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 65_536,
    })
    produce = producer.produce
    started = time.perf_counter()
    count = 0
    with open(path, "rb") as lines:
        for line in lines:
            value = line.rstrip(b"\n")
            while True:
                try:
                    produce(topic, value)
                    break
                except BufferError:
                    producer.poll(0.05)
            count += 1
    left = producer.flush(60)
    if left:
        sys.exit(f"{left} messages not delivered")
    print(f"{count} lines in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
