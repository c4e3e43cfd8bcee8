"""`hhar process`, `hhar profile` and `hhar status`: the processor's commands."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the processor's commands."""
