"""The bare client loop: read a file's lines and `produce()` each, nothing else.

The reference `hhar produce` is held to: the same client (confluent-kafka) with the producer's
own settings (`delivery.producer_config`: compression, linger, batch size, idempotence, queue
bounds), but no validation, no key, no timestamp, no header, no transaction. Prints
``<lines> lines in <s> s``.

Usage: python bench/bare_producer.py BOOTSTRAP TOPIC FILE
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Producer

from hhar_stream.producer.delivery import producer_config
from hhar_stream.settings import Settings


def main() -> None:
    bootstrap, topic, path = sys.argv[1:4]
    producer = Producer(producer_config(Settings(bootstrap=bootstrap)))
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
