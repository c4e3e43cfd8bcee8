"""A small replica of the real activity-data folder, and an HTTP server of it with switches for
the ways a download goes wrong (no internet in the tests).

`write_replica` lays out the real folder's 83 entries (the same 80 part-file names, a few
generated rows each, the ``_committed_`` marker listing them, ``_started_`` and ``_SUCCESS``);
`replica_figures` gives its figures as `SetFigures`, so that a check can hold a folder to them.
`ReplicaServer` serves a folder over HTTP/1.0 on 127.0.0.1 from a thread, with range requests,
and records every request.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from hhar_stream.dataset import real
from hhar_stream.dataset.check import SetFigures
from hhar_stream.generator.synth import write_dataset
from hhar_stream.schemas import parse_event

REPLICA_ROWS = 1_600
"""Rows of the replica: 20 per part file."""
SERVED = "/activity-data"
"""The folder's path on the server."""
_RANGE = re.compile(r"bytes=(\d+)-$")


def write_replica(folder: Path, rows: int = REPLICA_ROWS, seed: int = 3) -> Path:
    """The real folder's layout with generated rows: the 80 real part-file names and markers."""
    generated = folder.with_name(folder.name + "-generated")
    write_dataset(generated, rows=rows, seed=seed)
    folder.mkdir(parents=True)
    parts = sorted(path for path in generated.iterdir() if path.name.startswith("part-"))
    for number, path in enumerate(parts):
        path.rename(folder / real.PART_NAMES[number])
    for path in generated.iterdir():
        path.unlink()
    generated.rmdir()
    (folder / real.COMMITTED_MARKER).write_text(real.committed_marker(real.PART_NAMES))
    (folder / real.STARTED_MARKER).write_bytes(b"")
    (folder / real.SUCCESS_MARKER).write_bytes(b"")
    return folder


def replica_figures(folder: Path) -> SetFigures:
    """The figures of a replica, computed line by line with the event model."""
    cells: Counter[tuple[str, str]] = Counter()
    rows = size = 0
    for name in real.PART_NAMES:
        data = (folder / name).read_bytes()
        size += len(data)
        for line in data.splitlines():
            event = parse_event(line)
            cells[(event.device, event.gt)] += 1
            rows += 1
    return SetFigures(
        label="the replica",
        markers=real.MARKERS,
        part_names=real.PART_NAMES,
        blob_ids={name: real.git_blob_id((folder / name).read_bytes()) for name in real.ENTRIES},
        rows=rows,
        json_bytes=size,
        model=real.MODEL,
        device_activity=dict(cells),
    )


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of `folder` (hidden ones too) by name."""
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away (a fetch stopped in the middle) is no error here."""


@dataclass
class Request:
    """One request the server answered."""

    method: str
    name: str
    range: str | None
    status: int


@dataclass
class ReplicaServer:
    """An HTTP server of `folder` at `url`, with switches for the failure cases.

    Use it as a context manager: it serves from a thread between enter and exit.
    """

    folder: Path
    ranges: bool = True
    """False: a range request gets the whole file (200), as from a server that ignores it."""
    cut_once: dict[str, int] = field(default_factory=dict)
    """File name -> bytes sent before the connection drops, the first time it is sent."""
    short: dict[str, int] = field(default_factory=dict)
    """File name -> bytes sent before the connection closes, every time (Content-Length
    announces the whole file)."""
    throttle: float = 0.0
    """Seconds of pause after every 1 KiB sent (a slow link)."""
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Bind a free port of 127.0.0.1 (nothing is served until the server is entered)."""
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the served folder."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{SERVED}"

    def __enter__(self) -> ReplicaServer:
        """Start serving."""
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def gets(self, name: str) -> list[Request]:
        """The GET requests of file `name`."""
        return [r for r in self.requests if r.method == "GET" and r.name == name]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet: the requests are recorded instead."""

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(body=False)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                name = urllib.parse.unquote(self.path.removeprefix(SERVED + "/"))
                path = replica.folder / name
                wanted = self.headers.get("Range")
                if not self.path.startswith(SERVED + "/") or not path.is_file():
                    self._record(name, wanted, 404)
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start, status = 0, 200
                match = _RANGE.match(wanted or "")
                if wanted and replica.ranges and match:
                    start = int(match[1])
                    if start >= len(data):
                        self._record(name, wanted, 416)
                        self.send_error(416)
                        return
                    status = 206
                self._record(name, wanted, status)
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                end = len(data)
                if name in replica.cut_once:
                    end = start + replica.cut_once.pop(name)
                elif name in replica.short:
                    end = replica.short[name]
                self._send(data[start:end])
                if end < len(data):
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

            def _send(self, data: bytes) -> None:
                if not replica.throttle:
                    self.wfile.write(data)
                    return
                for first in range(0, len(data), 1024):
                    self.wfile.write(data[first : first + 1024])
                    self.wfile.flush()
                    time.sleep(replica.throttle)

            def _record(self, name: str, wanted: str | None, status: int) -> None:
                replica.requests.append(Request(self.command, name, wanted, status))

        return Handler
