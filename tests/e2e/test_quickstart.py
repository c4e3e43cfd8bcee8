"""The README's quickstart, run literally on a clean copy of the repository.

`make demo` (bounded by DEMO_SECONDS) must set itself up, start the broker, generate data,
run producer and processor, publish every result topic, serve the dashboard (whose page shows
the count while the demo runs) and leave no process behind. The copy
gets its own virtualenv (sharing this interpreter's installed packages, so nothing is
downloaded) so that installing it does not touch the environment running the tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from hhar_stream.apps.watch import WATCHED_QUERIES
from hhar_stream.daemons import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", readme, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def processes_under(folder: Path) -> list[str]:
    """Command lines of running processes that mention `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(cmdline[:200])
    return found


def last_snapshot(output: str) -> dict[str, list[str]]:
    """The tables of the last plain snapshot `hhar watch` printed: title -> lines."""
    snapshot = output.rsplit("== total_count", 1)[1]
    tables: dict[str, list[str]] = {}
    for block in ("== total_count" + snapshot).split("== ")[1:]:
        title, *lines = block.strip().splitlines()
        tables[title.split(" ")[0]] = lines
    return tables


def dashboard_count(url: str, demo: subprocess.Popen) -> str | None:
    """The count the demo's dashboard shows once it shows one (None if the demo ends first)."""
    while demo.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/api/page", timeout=5) as response:  # noqa: S310
                page = json.load(response)
        except OSError:
            page = None
        if page:
            value = next(card["value"] for card in page["cards"] if card["id"] == "total_count")
            if value != "-":
                return value
        time.sleep(2)
    return None


def test_readme_quickstart_demo_on_a_clean_copy(tmp_path: Path) -> None:
    commands = quickstart_commands()
    assert commands == ["make demo", "make test"]

    copy = tmp_path / "hhar-stream"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(copy)], check=True)
    # The working tree under test, not only what is committed.
    for path in subprocess.run(
        ["git", "ls-files", "--modified", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split():
        if (REPO / path).is_file():
            (copy / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, copy / path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)

    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HHAR_", "PYTEST", "VIRTUAL_ENV"))
    }
    env |= {
        "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(env_dir),
        "HHAR_KAFKA_PORT": str(port),
        "HHAR_KAFKA_CONTROLLER_PORT": str(free_port()),
        "HHAR_BOOTSTRAP": f"127.0.0.1:{port}",
        "HHAR_KAFKA_HEAP": "384m",
        "HHAR_DRIVER_MEMORY": "1g",
        "DEMO_SECONDS": "240",
        "HHAR_DASHBOARD_PORT": str(free_port()),
        "HHAR_SPARK_UI_PORT": str(free_port()),
    }
    out, err = tmp_path / "demo.stdout", tmp_path / "demo.stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            commands[0].split(), cwd=copy, env=env, stdout=stdout, stderr=stderr, text=True
        )
        try:
            counted = dashboard_count(f"http://127.0.0.1:{env['HHAR_DASHBOARD_PORT']}", process)
            process.wait(timeout=900)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    demo = subprocess.CompletedProcess(
        process.args, process.returncode, out.read_text(), err.read_text()
    )
    output = demo.stdout[-4000:] + demo.stderr[-4000:]
    assert demo.returncode == 0, output
    # make echoes the command (after Maven's colour resets); the demo's own first line says
    # which data it replays.
    first = re.search(r"hhar demo --seconds \d+\n(.*)\n", demo.stdout)
    assert first, output
    assert first[1] == (
        "data: generating 200,000 HHAR-like rows into data/activity-data, then replaying them "
        "(a generated set: hhar data fetch gets the real one)"
    ), output
    assert f"dashboard: http://127.0.0.1:{env['HHAR_DASHBOARD_PORT']}" in demo.stdout, output
    assert f"Spark UI:  http://127.0.0.1:{env['HHAR_SPARK_UI_PORT']}" in demo.stdout, output
    assert counted, f"the dashboard never showed a count during the demo\n{output}"
    tables = last_snapshot(demo.stdout)
    assert set(tables) == set(WATCHED_QUERIES), output
    empty = [
        name
        for name, lines in tables.items()
        if name != "bad_records" and lines[:1] == ["(no results yet)"]
    ]
    assert not empty, f"result topics without data: {empty}\n{output}"
    assert processes_under(copy) == []
    assert processes_under(env_dir) == []
