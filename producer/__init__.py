"""The simulator: replay HHAR rows into Kafka (`hhar produce`) and generate data (`hhar data`).

`replay(settings)` is `hhar produce` without the command line; `resolve_source`, `read_blocks`
and `read_rows` read a source's validated rows; `parse_uci_line` reads the original UCI CSV
layout.
"""

from .pacing import Pacer
from .progress import ReplayStats
from .replay import replay
from .sources import FilePosition, SourceFile, read_blocks, read_rows, resolve_source
from .uci import UciLayout, parse_uci_line

__all__ = [
    "FilePosition",
    "Pacer",
    "ReplayStats",
    "SourceFile",
    "UciLayout",
    "parse_uci_line",
    "read_blocks",
    "read_rows",
    "replay",
    "resolve_source",
]
