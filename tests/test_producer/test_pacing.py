"""The pacer's schedule, on a fake clock that only moves when the pacer sleeps or work is done."""

from __future__ import annotations

import pytest

from hhar_stream.producer.pacing import Pacer


class FakeClock:
    """A monotonic clock that advances only when told to (or when slept on)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def send_times(pacer: Pacer, clock: FakeClock, times_ms: list[int], work: float = 0.0) -> list:
    """When each event leaves, relative to the first; `work` seconds pass per event."""
    sent = []
    for time_ms in times_ms:
        assert pacer.wait(time_ms)
        sent.append(round(clock.now - 100.0, 6))
        clock.now += work
    return sent


def test_speedup_divides_the_recording_gaps() -> None:
    clock = FakeClock()
    pacer = Pacer(speedup=4, clock=clock, sleep=clock.sleep)
    assert send_times(pacer, clock, [1000, 1200, 1200, 3000, 2900, 5000]) == [
        0.0,
        0.05,
        0.05,
        0.5,
        0.5,
        1.0,
    ]
    assert max(clock.sleeps) <= 0.1
    assert pacer.max_drift == 0.0


def test_max_gap_caps_long_gaps_in_event_time() -> None:
    clock = FakeClock()
    pacer = Pacer(speedup=1, max_gap=2.0, clock=clock, sleep=clock.sleep)
    assert send_times(pacer, clock, [0, 1000, 3_601_000, 3_601_500]) == [0.0, 1.0, 3.0, 3.5]


def test_rate_spaces_events_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, clock=clock, sleep=clock.sleep)
    assert send_times(pacer, clock, [0, 0, 50_000, 7]) == [0.0, 0.1, 0.2, 0.3]
    assert pacer.due(0, events=5) == pytest.approx(100.4)
    assert pacer.due(0) == pytest.approx(100.9)


def test_drift_is_how_late_the_replay_runs() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=100, clock=clock, sleep=clock.sleep)
    send_times(pacer, clock, [0] * 5, work=0.03)  # 30 ms of work per 10 ms slot
    assert pacer.drift == pytest.approx(0.08)
    assert pacer.max_drift == pytest.approx(0.08)
    assert send_times(pacer, clock, [0] * 12)[-2:] == [0.15, 0.16]  # caught up, then on time
    assert pacer.drift == 0.0
    assert pacer.max_drift == pytest.approx(0.1)


def test_a_wait_serves_the_idle_callback_and_can_be_stopped() -> None:
    clock = FakeClock()
    pacer = Pacer(speedup=1, clock=clock, sleep=clock.sleep)
    calls = []

    def idle() -> bool:
        calls.append(clock.now)
        return len(calls) < 3

    assert pacer.wait(0, on_idle=idle)
    assert not pacer.wait(10_000, on_idle=idle)
    assert len(calls) == 3
    assert clock.now == pytest.approx(100.2)


def test_a_pacer_needs_one_pacing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Pacer(speedup=2, rate=3)
    with pytest.raises(ValueError, match="exactly one"):
        Pacer()
