"""The real set's facts: as their sources state them, and stated in one place only."""

from __future__ import annotations

import re
from pathlib import Path

from hhar_stream.dataset import real
from hhar_stream.dataset.check import PART_FILE
from hhar_stream.generator.synth import layout_names

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("hhar_stream", "schemas", "dataset", "producer", "generator", "processor")


def published_section(real_samples: Path) -> str:
    """STATS.md §11: the full-set figures of the original exercise's own outputs."""
    stats = (real_samples / "STATS.md").read_text()
    return stats.split("## 11.", 1)[1]


def test_the_device_activity_table_is_the_published_one(real_samples: Path) -> None:
    section = published_section(real_samples)
    rows = re.findall(r"^\| (nexus4_\d) \| (\w+) \| (\d+) \|$", section, re.M)
    assert len(rows) == 14
    assert {(device, gt): int(count) for device, gt, count in rows} == (
        real.REAL_DEVICE_ACTIVITY_COUNTS
    )


def test_rows_bytes_and_model_by_device_are_the_published_ones(real_samples: Path) -> None:
    section = published_section(real_samples)
    assert f"count {real.REAL_ROWS:,}" in section
    assert f"total size of the `.json` files {real.REAL_JSON_BYTES:,} bytes" in section
    assert f"83 entries in the folder, {real.REAL_FILES} of them `.json`" in section
    published = dict(re.findall(r"nexus4 / (nexus4_\d) ([\d,]+)", section))
    assert {device: int(count.replace(",", "")) for device, count in published.items()} == (
        real.device_totals()
    )
    assert sum(real.REAL_DEVICE_ACTIVITY_COUNTS.values()) == real.REAL_ROWS
    running = re.search(r"the running count was\s+([\d,/ ]+) rows", section)
    assert running, section
    counts = [int(n.replace(",", "")) for n in running[1].split("/")]
    assert [b - a for a, b in zip([0, *counts], counts, strict=False)] == list(
        real.FIRST_FILES_ROWS
    )


def test_the_folder_has_83_entries_named_as_the_book_repository_names_them() -> None:
    assert len(real.ENTRIES) == len(set(real.ENTRIES)) == 83
    assert set(real.BLOB_IDS) == set(real.ENTRIES)
    assert [int(PART_FILE.fullmatch(name)[1]) for name in real.PART_NAMES] == list(range(80))
    assert real.PART_NAMES[7] == (
        "part-00007-tid-730451297822678341-1dda7027-2071-4d73-a0e2-7fb6a91e1d1f-0-c000.json"
    )
    # The committed marker of the book's repository is 6,824 bytes (STATS.md §2); the empty
    # markers have git's empty blob id.
    assert len(real.committed_marker(real.PART_NAMES)) == 6824
    assert real.git_blob_id(b"") == real.EMPTY_BLOB_ID
    assert len(set(real.PART_BLOB_IDS)) == 80


def test_the_generator_names_its_part_files_in_the_same_layout() -> None:
    names, tid = layout_names(80, seed=5)
    matches = [PART_FILE.fullmatch(name) for name in names]
    assert all(matches)
    assert {match[2] for match in matches if match} == {tid} != {real.TID}


def test_the_real_set_is_stated_in_one_place_only() -> None:
    """Its distinctive figures and names appear in `dataset/real.py` and nowhere else in the
    package (numbers compared without their digit separators)."""
    distinctive = {
        str(real.REAL_ROWS),
        str(real.REAL_JSON_BYTES),
        real.TID,
        real.JOB,
        real.PART_BLOB_IDS[0],
        str(real.REAL_DEVICE_ACTIVITY_COUNTS[("nexus4_2", "walk")]),
    }
    home = REPO_ROOT / "dataset" / "real.py"
    found = {}
    for folder in PACKAGE_FOLDERS:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = re.sub(r"(?<=\d)[_,](?=\d)", "", path.read_text())
            found[path] = {fact for fact in distinctive if fact in text}
    assert found[home] == distinctive
    assert {path: facts for path, facts in found.items() if facts and path != home} == {}
