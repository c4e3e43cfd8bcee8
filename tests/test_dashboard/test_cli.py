"""`hhar dashboard` as a user starts it, without a broker: a taken port is one error line; a
broker that does not answer is words on the page, not the end of the server."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

from support.cli import HharProcess, hhar_env, run_hhar
from support.polling import poll_until

from hhar_stream.daemons import free_port


def test_a_taken_port_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_hhar(["dashboard", "--port", str(port)], hhar_env(), tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: port {port} on 127.0.0.1 is already in use: stop what listens there or "
        f"choose another --port (HHAR_DASHBOARD_PORT)\n"
    )
    assert result.stdout == ""


def test_an_unreachable_broker_is_said_on_the_page_and_the_server_goes_on(tmp_path: Path) -> None:
    unused, port = free_port(), free_port()
    dashboard = HharProcess(
        ["dashboard", "--port", str(port)],
        hhar_env(HHAR_BOOTSTRAP=f"127.0.0.1:{unused}", HHAR_CHECKPOINT=str(tmp_path)),
        tmp_path,
        "dashboard",
    )

    def alerts() -> list[str]:
        assert dashboard.running(), dashboard.stderr[-3000:]
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/page",  # noqa: S310
                timeout=5,
            ) as response:
                return [alert["text"] for alert in json.load(response)["alerts"]]
        except OSError:
            return []

    try:
        said = poll_until(
            lambda: [
                text
                for text in alerts()
                if text.startswith(f"Cannot reach Kafka at 127.0.0.1:{unused}")
            ],
            60,
            "the page saying Kafka does not answer",
            interval=0.2,
        )
        assert "recovers by itself when Kafka answers again" in said[0]
        assert dashboard.running()
    finally:
        dashboard.process.terminate()
        assert dashboard.wait(30) == 0, dashboard.stderr[-3000:]
    assert "Traceback" not in dashboard.stderr
    assert f"cannot reach Kafka at 127.0.0.1:{unused}" in dashboard.stderr
