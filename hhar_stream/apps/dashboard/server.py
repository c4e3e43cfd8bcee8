"""The dashboard's web server: a Starlette app that pushes the feed's page content to browsers.

Routes: ``/`` the page, ``/static/...`` its script and style, ``/vendor/plotly.min.js`` the
Plotly.js bundle of the installed ``plotly`` package (no CDN: the page works offline),
``/api/page`` the current content as JSON, ``/events`` a stream of server-sent events
(one ``page`` event per new version of the content; the browser's EventSource reconnects by
itself when the connection breaks), and with ``--metrics`` ``/metrics`` for Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources

import anyio
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ...metrics import exposition, process_registry
from ...settings import Settings
from .feed import Feed
from .metrics import DashboardMetrics

PLOTLY_JS = resources.files("plotly") / "package_data" / "plotly.min.js"
"""Plotly.js as the ``plotly`` wheel ships it (what ``plotly.offline.get_plotlyjs`` reads)."""
STATIC = resources.files(__package__) / "static"
PING_SECONDS = 15
"""Seconds between keep-alive comments on an idle event stream."""


class Changes:
    """Wakes the event streams of one event loop when the feed has a new version."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake coroutines of `loop`."""
        self._loop = loop
        self._event = asyncio.Event()

    def notify_threadsafe(self) -> None:
        """Called from the feed's thread: wake every waiting stream."""
        self._loop.call_soon_threadsafe(self._notify)

    def _notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def next(self) -> asyncio.Event:
        """The event set at the next change."""
        return self._event


async def _first_of(*events: asyncio.Event | anyio.Event) -> None:
    """Return once any of `events` is set."""
    async with anyio.create_task_group() as group:

        async def wait(event: asyncio.Event | anyio.Event) -> None:
            await event.wait()
            group.cancel_scope.cancel()

        for event in events:
            group.start_soon(wait, event)


def create_app(feed: Feed, settings: Settings) -> Starlette:
    """The dashboard app over `feed` (started and stopped with the app); with
    ``settings.dashboard_metrics``, Prometheus metrics at ``/metrics``."""
    changes: list[Changes] = []
    streams = [0]
    """Event streams open now (the app's one event loop counts them)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        changes.append(Changes(asyncio.get_running_loop()))
        feed.subscribe(changes[0].notify_threadsafe)
        feed.start()
        try:
            yield
        finally:
            await asyncio.to_thread(feed.stop)

    async def index(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    async def plotly_js(request: Request) -> Response:
        return FileResponse(str(PLOTLY_JS), media_type="text/javascript")

    async def current(request: Request) -> Response:
        _, content = feed.latest()
        return Response(content, media_type="application/json")

    async def table(request: Request) -> Response:
        query = request.query_params.get("query", "")
        search = request.query_params.get("search", "")[:200]
        try:
            first = max(0, int(request.query_params.get("first", "0")))
        except ValueError:
            return Response("first: not a number", status_code=400)
        content = await asyncio.to_thread(feed.table_page, query, first, search)
        if content is None:
            return Response(f"no table of query {query!r}", status_code=404)
        return Response(content, media_type="application/json")

    async def events(request: Request) -> Response:
        shutdown = anyio.Event()  # set when the server stops: the stream then ends cleanly

        async def stream() -> AsyncIterator[dict[str, str]]:
            sent = None
            streams[0] += 1
            try:
                while not shutdown.is_set():
                    changed = changes[0].next()
                    version, content = feed.latest()
                    if version != sent:
                        sent = version
                        yield {"event": "page", "id": str(version), "data": content}
                        continue
                    await _first_of(changed, shutdown)
            finally:
                streams[0] -= 1

        return EventSourceResponse(
            stream(), ping=PING_SECONDS, shutdown_event=shutdown, shutdown_grace_period=1
        )

    routes = [
        Route("/", index),
        Route("/api/page", current),
        Route("/api/table", table),
        Route("/events", events),
        Route("/vendor/plotly.min.js", plotly_js),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    if settings.dashboard_metrics:
        registry = process_registry(DashboardMetrics(settings, feed, lambda: streams[0]))

        async def metrics(request: Request) -> Response:
            body, content_type = exposition(registry, request.headers.get("accept"))
            return Response(body, headers={"Content-Type": content_type})

        routes.append(Route("/metrics", metrics))
    return Starlette(routes=routes, lifespan=lifespan)
