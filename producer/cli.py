"""`hhar produce` and `hhar data`: the simulator's commands."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the producer's commands."""
