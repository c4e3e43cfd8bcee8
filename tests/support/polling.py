"""Bounded waits: poll a condition until a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.05,
) -> Any:
    """Call `condition` until it returns something truthy (returned) or `timeout` passes.

    `what` names what is waited for in the failure message (a callable: computed then).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            msg = f"not within {timeout:.0f} s: {text}"
            raise AssertionError(msg)
        time.sleep(interval)
