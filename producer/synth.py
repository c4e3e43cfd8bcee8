"""`hhar data synth`: a calibrated generator of HHAR-like data in the real folder's layout."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command group."""
