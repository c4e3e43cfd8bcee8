"""librdkafka's log lines as a person sees them."""

from __future__ import annotations

import logging

import pytest

from hhar_stream.producer.delivery import librdkafka_logger


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "GETPID [rdkafka#producer-3] [thrd:main]: Failed to acquire transactional PID from "
            "broker TxnCoordinator/1: Broker: Coordinator load in progress: retrying",
            False,
        ),
        (
            "FAIL [rdkafka#producer-1] [thrd:127.0.0.1:9092/1]: Connect to ipv4#127.0.0.1:9092 "
            "failed: Connection refused",
            True,
        ),
    ],
)
def test_a_retried_coordinator_load_is_not_a_warning(caplog, message: str, shown: bool) -> None:
    with caplog.at_level(logging.INFO, logger=librdkafka_logger.name):
        librdkafka_logger.warning(message)
    assert [record.getMessage() for record in caplog.records] == ([message] if shown else [])
