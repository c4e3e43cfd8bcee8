"""The shared daemon helpers: signals, pid files and graceful stops, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hhar_stream.daemons import (
    PidFile,
    launch,
    pid_alive,
    stop_child,
    stop_gracefully,
    stop_on_signals,
)


def test_the_first_signal_stops_and_the_second_aborts() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(stop, "stopping"):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            stop.wait(5)  # the handler raises in this thread as soon as it runs
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_pid_file_names_a_live_process_only(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "sleeper.pid")
    assert pid_file.pid() is None
    process = launch(
        [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleeper.log", pid_file
    )
    assert pid_file.pid() == process.pid
    stop_gracefully({"sleeper": process.pid}, timeout=10)
    process.wait(5)
    assert pid_file.pid() is None and not pid_alive(process.pid)
    pid_file.forget()
    assert not pid_file.path.exists()


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    stop_child(process, "stubborn", timeout=0.5)
    assert process.returncode == -signal.SIGKILL
