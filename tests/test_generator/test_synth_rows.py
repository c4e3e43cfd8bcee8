"""Generated rows: the real files' text format, and realistic content (users, clocks, signal)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from hhar_stream.generator.plan import SESSION_STARTS_NS, plan_dataset
from hhar_stream.generator.stream import merged_chunks
from hhar_stream.generator.synth import grid_value_text, iter_lines
from hhar_stream.schemas import ACTIVITY_LABELS, WIRE_FIELDS, parse_event

ROWS = 60_000
SEED = 11
PRAIRIE = "activity_data_stream_json_1000consecutive_rows__tombresee_Prairie-Fire__extracted.tsv"
CNOAM = "activity_data_part00000_first20rows__cnoam_spark_local_env.txt"
NUMBER = r"-?(?:0|[1-9]\d*)\.\d+(?:E-?\d+)?"
LINE = re.compile(
    r'\{"Arrival_Time":\d{13},"Creation_Time":\d{19},"Device":"nexus4_[12]","Index":\d+,'
    r'"Model":"nexus4","User":"[a-i]","gt":"(?:' + "|".join(ACTIVITY_LABELS) + r')",'
    rf'"x":{NUMBER},"y":{NUMBER},"z":{NUMBER}}}\n'
)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return list(iter_lines(ROWS, SEED))


@pytest.fixture(scope="module")
def rows(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    ("grid", "text"),
    [
        (92, "0.0014038086"),
        (33, "5.0354E-4"),
        (22, "3.356934E-4"),
        (-25, "-3.814697E-4"),
        (512, "0.0078125"),
        (-813, "-0.0124053955"),
        (0, "0.0"),
        (65536, "1.0"),
    ],
)
def test_grid_values_are_written_as_the_real_files_write_them(grid: int, text: str) -> None:
    assert grid_value_text(grid) == text


def real_reading_texts(real_samples: Path) -> list[str]:
    texts = []
    with (real_samples / PRAIRIE).open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            texts += [row["x"], row["y"], row["z"]]
    for line in (real_samples / CNOAM).read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 10 and cells[0].isdigit():
            texts += cells[7:]
    return texts


def test_every_real_reading_is_a_grid_value_written_the_same_way(real_samples: Path) -> None:
    texts = real_reading_texts(real_samples)
    assert len(texts) == 3000 + 60
    for text in texts:
        grid = round(float(text) * 65536)
        assert abs(float(text) * 65536 - grid) < 0.01, text
        assert grid_value_text(grid) == text


def test_lines_have_the_real_key_order_and_number_style(lines: list[str]) -> None:
    assert len(lines) == ROWS
    for line in lines:
        assert LINE.fullmatch(line), line
    keys = json.loads(lines[0], object_pairs_hook=lambda pairs: [key for key, _ in pairs])
    assert tuple(keys) == WIRE_FIELDS
    readings = [text for line in lines[:5000] for text in re.findall(rf'"[xyz]":({NUMBER})', line)]
    small = [text for text in readings if 0 < abs(float(text)) < 1e-3]
    assert small and all("E-" in text for text in small)
    assert all("E" not in text for text in readings if abs(float(text)) >= 1e-3)
    assert max(len(text.lstrip("-0.").split("E")[0].replace(".", "")) for text in readings) <= 9


def test_lines_reserialise_byte_for_byte(lines: list[str]) -> None:
    for line in lines[::37]:
        assert parse_event(line).to_json() + "\n" == line


def test_unlabelled_rows_carry_the_string_null(rows: list[dict]) -> None:
    labels = {row["gt"] for row in rows}
    assert labels == set(ACTIVITY_LABELS)
    assert all(isinstance(row["gt"], str) for row in rows)


def test_nine_users_on_two_days_on_both_phones(rows: list[dict]) -> None:
    assert {row["User"] for row in rows} == set("abcdefghi")
    assert {(row["User"], row["Device"]) for row in rows} == {
        (user, device) for user in "abcdefghi" for device in ("nexus4_1", "nexus4_2")
    }
    days = defaultdict(set)
    for row in rows:
        day = dt.datetime.fromtimestamp(row["Arrival_Time"] / 1000, dt.UTC).date()
        days[row["User"]].add(day.isoformat())
    assert {user for user, seen in days.items() if seen == {"2015-02-23"}} == set("acgh")
    assert {user for user, seen in days.items() if seen == {"2015-02-24"}} == set("bdefi")
    first = min(rows, key=lambda row: row["Arrival_Time"])
    assert first["User"] == "g"
    assert first["Arrival_Time"] >= SESSION_STARTS_NS["g"] // 1_000_000


def test_stream_is_time_ordered_and_index_counts_per_user_and_device(rows: list[dict]) -> None:
    arrivals = [row["Arrival_Time"] for row in rows]
    assert arrivals == sorted(arrivals)
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        seen[(row["User"], row["Device"])].append(row["Index"])
    for indexes in seen.values():
        assert indexes == list(range(len(indexes)))


def per_stream(rows: list[dict]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(row["User"], row["Device"])].append(row)
    return {
        key: {name: np.array([row[name] for row in group]) for name in WIRE_FIELDS}
        for key, group in grouped.items()
    }


def test_phones_sample_at_200_hz_with_jitter_repeats_and_gaps(rows: list[dict]) -> None:
    for (user, device), columns in per_stream(rows).items():
        steps_ms = np.diff(columns["Creation_Time"]) / 1e6
        assert 4.8 < np.median(steps_ms) < 5.3, (user, device)
        assert np.percentile(steps_ms, 95) - np.percentile(steps_ms, 5) > 2.0
        arrival_steps = np.diff(columns["Arrival_Time"])
        assert 0.05 < np.mean(arrival_steps == 0) < 0.25, (user, device)
        assert arrival_steps.max() > 100, (user, device)


def test_phone_clocks_are_offset_as_the_real_ones(rows: list[dict]) -> None:
    for (user, device), columns in per_stream(rows).items():
        ahead_s = np.median(columns["Creation_Time"] / 1e9 - columns["Arrival_Time"] / 1e3)
        if device == "nexus4_1":
            assert -2.05 < ahead_s < -1.98, user
        else:
            assert 1845.9 < ahead_s < 1846.2, user


def test_readings_are_float32_sensor_steps(rows: list[dict]) -> None:
    for (user, device), columns in per_stream(rows).items():
        for axis in "xyz":
            grid = columns[axis] * 65536
            # Written with float32 digits: within float32 precision of the grid.
            assert (np.abs(grid - np.rint(grid)) <= 1e-7 * np.abs(grid) + 1e-4).all()
            residues = set((np.rint(grid).astype(int) % 70).tolist())
            assert len(residues) <= 2, (user, device, axis)  # 2 only where clipped


def test_spread_is_tiny_at_rest_and_large_when_moving(rows: list[dict]) -> None:
    by_activity: dict[str, list[list[float]]] = defaultdict(list)
    for row in rows:
        by_activity[row["gt"]].append([row["x"], row["y"], row["z"]])
    for gt, values in by_activity.items():
        spread = np.std(values, axis=0)
        if gt in ("stand", "sit", "null"):
            assert spread.max() < 0.05, gt
            assert np.abs(np.mean(values, axis=0)).max() < 0.02, gt
        else:
            assert spread.min() > 0.15, gt
    assert (
        np.std(by_activity["stairsdown"], axis=0).min() > np.std(by_activity["bike"], axis=0).max()
    )


def test_users_stairs_means_differ_in_sign() -> None:
    plan = plan_dataset(300_000, SEED)
    sums: dict[tuple[int, int], np.ndarray] = defaultdict(lambda: np.zeros(4))
    for chunk in merged_chunks(plan):
        for label in np.unique(chunk.label).tolist():
            picked = chunk.label == label
            sums[divmod(label, len(ACTIVITY_LABELS))] += [
                picked.sum(),
                chunk.kx[picked].sum(),
                chunk.ky[picked].sum(),
                chunk.kz[picked].sum(),
            ]
    for gt in ("stairsup", "stairsdown"):
        code = ACTIVITY_LABELS.index(gt)
        x_means = [total[1] / total[0] / 65536 for (_, g), total in sums.items() if g == code]
        assert min(x_means) < -0.1 and max(x_means) > 0.1, gt
