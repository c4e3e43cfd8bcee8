"""`hhar dashboard`: serve the live results page until Ctrl+C."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from ...daemons import port_is_free
from ...metrics import port_taken
from ...options import Commands, add_setting, settings_from_args
from ...settings import Settings

logger = logging.getLogger(__name__)


def register(subparsers: Commands) -> None:
    """Add the `dashboard` command."""
    parser = subparsers.add_parser(
        "dashboard",
        help="live web page of the results, the pipeline's health and Spark's UI link",
        description="Serve a web page that shows the result topics live (charts and tables), "
        "the pipeline's health (events in, processed, lag, last batch, bad records, dead "
        "letters) and a link to Spark's UI. The page updates itself as results arrive and "
        "needs no internet. With --metrics, Prometheus metrics at /metrics on the same port.",
    )
    add_setting(parser, "--host", field="dashboard_host")
    add_setting(parser, "--port", field="dashboard_port", type=int)
    add_setting(parser, "--metrics", field="dashboard_metrics")
    add_setting(parser, "--bootstrap", field="bootstrap")
    add_setting(parser, "--topic", field="topic")
    add_setting(parser, "--dlq-topic", field="dlq_topic")
    add_setting(parser, "--results-prefix", field="results_prefix")
    add_setting(
        parser,
        "--checkpoint",
        field="checkpoint",
        help="the processor's checkpoint root, where its status file is",
    )
    parser.set_defaults(func=_dashboard)


def dashboard_url(settings: Settings) -> str:
    """The address to open in a browser."""
    host = settings.dashboard_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a name, no bind
    return f"http://{shown}:{settings.dashboard_port}"


def serve(settings: Settings) -> None:
    """Serve the dashboard of `settings` until interrupted.

    Raises:
        ConfigError: when the port is taken.
    """
    import uvicorn

    from .feed import Feed
    from .server import create_app

    host, port = settings.dashboard_host, settings.dashboard_port
    if not port_is_free(port, host):
        raise port_taken(port, host, "--port", "dashboard_port")
    app = create_app(Feed(settings), settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    print(f"dashboard at {dashboard_url(settings)} (Ctrl+C to stop)", flush=True)
    uvicorn.Server(config).run()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _dashboard(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    # uvicorn stops on SIGINT and SIGTERM, then raises the signal again: a SIGTERM (docker
    # stop, make demo's end) then ends the command as Ctrl+C does, cleanly.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(settings)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    logger.info("dashboard stopped")
    return 0
