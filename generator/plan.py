"""The plan of a generated HHAR-like data set: who records what, when, how many rows, how it moves.

Every figure the generator is calibrated on is stated here with its source in the shared
real-sample notes (STATS.md sections, "§n"), or, for the real set's own counts and describe()
figures, in `hhar_stream.dataset.real`. `plan_dataset` turns them into a `DatasetPlan`: one
`StreamPlan` per (User, Device), each a time-ordered list of `DeviceBlock`s (an activity of
one user on one phone) carrying its exact row count, its time span, its gaps and the
parameters of its gyroscope signal. The plan is small (a few hundred blocks whatever the size);
`hhar_stream.generator.stream` turns it into rows.

Calibration, at any size: the Device x gt counts are the real ones scaled to the requested
row count (largest remainder, so they sum exactly), the per-gt means of x, y, z are the real
ones (stairsup's is derived so that the overall means equal describe()'s), and the spread of the
moving activities is scaled so that the overall standard deviations equal describe()'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ..dataset.real import (
    DEVICES,
    REAL_DESCRIBE,
    REAL_DEVICE_ACTIVITY_COUNTS,
    REAL_ROWS,
    USERS,
)
from ..schemas import ACTIVITY_LABELS

ACTIVITIES: tuple[str, ...] = ACTIVITY_LABELS

# --- users and their sessions (§8) ----------------------------------------------------------

_UTC = dt.UTC


def _epoch_ns(year: int, month: int, day: int, hour: int, minute: int, second: float) -> int:
    whole = int(second)
    start = dt.datetime(year, month, day, hour, minute, whole, tzinfo=_UTC)
    return int(start.timestamp()) * 1_000_000_000 + round((second - whole) * 1e9)


SESSION_STARTS_NS: dict[str, int] = {
    # 2015-02-23: g's first row is the set's first (10:18:54.958, Prairie-Fire rows), a's is
    # 13:03:53.909 (UCI gyroscope file); c and h from their Creation_Time hours (§8).
    "g": _epoch_ns(2015, 2, 23, 10, 18, 54.958),
    "c": _epoch_ns(2015, 2, 23, 11, 45, 0),
    "a": _epoch_ns(2015, 2, 23, 13, 3, 53.909),
    "h": _epoch_ns(2015, 2, 23, 13, 25, 0),
    # 2015-02-24: i, f, d, b, e in the order of their Creation_Time hours (§8).
    "i": _epoch_ns(2015, 2, 24, 11, 0, 0),
    "f": _epoch_ns(2015, 2, 24, 11, 15, 0),
    "d": _epoch_ns(2015, 2, 24, 12, 20, 0),
    "b": _epoch_ns(2015, 2, 24, 13, 15, 0),
    "e": _epoch_ns(2015, 2, 24, 14, 15, 0),
}
"""When each user's session starts (true time, UTC); users overlap as the window counts show."""

USER_WEIGHTS: dict[str, float] = {
    "a": 8085,
    "b": 9123,
    "c": 7715,
    "d": 8124,
    "e": 9891,
    "f": 9206,
    "g": 9167,
    "h": 7733,
    "i": 9255,
}
"""Relative amount of data per user: the book's per-user counts (§8, dropDuplicates). With
rows per (User, Device) in these proportions and Index counting from 0, Index's mean and
stddev come out as the real describe() gives them (174.6k / 102.3k vs 174.5k / 102.1k)."""

USER_ACTIVITY_SHARES: dict[str, dict[str, float]] = {
    # §8, share of gt within user, 7-file subset (e's stairsup is the remainder).
    "g": {
        "null": 0.1909,
        "walk": 0.1729,
        "sit": 0.1572,
        "stand": 0.1441,
        "bike": 0.1213,
        "stairsdown": 0.1083,
        "stairsup": 0.1053,
    },
    "f": {
        "bike": 0.1465,
        "null": 0.1493,
        "stand": 0.1437,
        "sit": 0.1425,
        "stairsup": 0.1351,
        "walk": 0.1647,
        "stairsdown": 0.1182,
    },
    "e": {
        "null": 0.1818,
        "walk": 0.1645,
        "bike": 0.1508,
        "sit": 0.1452,
        "stand": 0.1399,
        "stairsdown": 0.1041,
        "stairsup": 0.1137,
    },
}
"""Known activity mixes of single users; the others follow the overall mix."""

SPARSE_ACTIVITIES: dict[tuple[str, str], float] = {("h", "sit"): 0.35}
"""UCI README: "some users have few collected samples for specific activities, e.g. User h and
activity sit" (§9): that user's share of that activity is multiplied by this factor."""

STAIRS_ORIENTATION: dict[str, int] = {
    "a": 1,
    "b": -1,
    "c": 1,
    "d": -1,
    "e": 1,
    "f": -1,
    "g": 1,
    "h": 1,
    "i": -1,
}
"""How each user wore the phones: the sign of their stairs means (a, c +1 and b -1 as in §6)."""

# --- the gyroscope signal per activity (§6, §7) ----------------------------------------------

ACTIVITY_MEANS: dict[str, tuple[float, float, float]] = {
    "bike": (0.022689, -0.008779, -0.082510),  # §11, full set
    "stairsdown": (0.021614, -0.032490, 0.12679137080213765),  # §11 x, y; §6 z
    "null": (-0.00744121740269, -4.14276537167517e-4, 0.004478045213719586),  # §6, full set
    "walk": (0.001970352086338, 7.489666845955465e-5, -0.00149828380428),  # §6, first files
    "sit": (-4.92132825379802e-4, 3.757376157445754e-4, -4.42863346250723e-5),  # §6
    "stand": (-3.00989804137386e-4, 4.133303473120163e-4, -2.86960196767408e-4),  # §6
    # stairsup: derived in `activity_means` so that the overall means are describe()'s.
}
"""Full-set mean of x, y, z per gt (rad/s). Cut exponents of §6's tiny means are taken as E-4."""

ACTIVITY_SPREADS: dict[str, tuple[float, float, float]] = {
    "stand": (0.019, 0.017, 0.032),
    "sit": (0.0021, 0.0039, 0.0028),
    "null": (0.0034, 0.0179, 0.0041),
    "walk": (0.62, 0.65, 0.72),
    "stairsup": (0.52, 0.52, 0.55),
    "stairsdown": (0.78, 0.63, 0.80),
    "bike": (0.18, 0.24, 0.31),
}
"""Stddev of x, y, z within one block (§7, UCI user a); the moving ones are rescaled per axis."""

MOVING: frozenset[str] = frozenset({"walk", "stairsup", "stairsdown", "bike"})

USER_OFFSETS: dict[str, tuple[float, float, float]] = {
    "stairsdown": (0.20, 0.03, 0.33),
    "stairsup": (0.25, 0.02, 0.32),
    "bike": (0.035, 0.015, 0.06),
    "walk": (0.012, 0.01, 0.006),
    "null": (0.008, 0.01, 0.02),
    "sit": (0.0005, 0.0005, 0.0005),
    "stand": (0.0015, 0.0015, 0.0015),
}
"""Typical distance of one user's mean from the activity's mean (§6, per-user table)."""

STAIRS_PATTERN: dict[str, tuple[int, int, int]] = {"stairsdown": (1, 0, -1), "stairsup": (-1, 0, 1)}
"""Axis signs of a +1-oriented user's stairs means (user a: down x+ z-, up x- z+); 0 = random."""

STEP_FREQUENCY_HZ: dict[str, tuple[float, float]] = {
    "walk": (1.7, 2.0),
    "stairsup": (1.4, 1.7),
    "stairsdown": (1.6, 1.9),
    "bike": (0.9, 1.3),
    "stand": (0.2, 0.5),
    "sit": (0.2, 0.5),
    "null": (0.2, 0.5),
}
"""Gait / pedalling frequency ranges (sway for the resting activities)."""

PERIODIC_SHARE = {True: 0.6, False: 0.3}
"""Share of a block's variance in its periodic part, for moving (True) and resting blocks."""

HARMONICS = np.array([1.0, 0.5, 0.25]) / np.sqrt((1.0 + 0.25 + 0.0625) / 2)
"""Amplitudes of the fundamental and two harmonics, scaled to unit variance."""

# --- sampling and clocks (§5, §7) ------------------------------------------------------------

SAMPLE_INTERVAL_NS = (5.00e6, 5.06e6)
"""Mean Creation_Time step per (User, Device) (median 5.035 ms, ~198-200 Hz)."""
CLOCK_OFFSET_NS = {
    "nexus4_1": (-1.992e9, -1.989e9),  # Creation_Time ~ 1.99-2.0 s behind Arrival_Time
    "nexus4_2": (1846.00e9, 1846.10e9),  # Creation_Time ~ 1846.05 s ahead
}
"""Range of each phone's clock offset (Creation_Time - true time), one draw per user."""
GRID = 65536
"""Values lie on a 1/65536 rad/s grid (float32 sensor values)."""
SENSOR_STEP = 70
"""The gyroscope's raw step in grid units: real values of one axis differ by multiples of 70."""
MAX_GRID = SENSOR_STEP * 7490
"""Largest |value| in grid units (about 8 rad/s)."""

ACTIVITY_ORDER = ("stand", "sit", "walk", "stairs", "bike")
"""Order of a session (real sessions start with stand; bike comes last: avg Index, §6)."""
NULL_WEIGHTS = (1.0, 1.0, 2.0, 3.0)
"""How a user's null rows spread over the breaks between the activities above."""
STAIRS_ROUNDS = 4
"""Up and down the stairs this many times (stairsup then stairsdown each round)."""
PAUSE_S = (240.0, 600.0)
"""Unrecorded pause before each null block (seconds, full size; scaled with the size)."""
TURN_S = (4.0, 12.0)
"""Pause at the top and bottom of the stairs (seconds, full size; scaled with the size)."""
GAP_SHARE = (0.03, 0.15)
"""Share of a block's span that its phone spends in gaps (no samples)."""
MEAN_GAP_S = 1.5
"""Mean length of a gap (seconds)."""
MIN_ROWS = 1000


@dataclass(frozen=True)
class DeviceBlock:
    """One activity of one user on one phone: `rows` samples from `start_ns` on."""

    gt: str
    rows: int
    first_index: int
    start_ns: int
    interval_ns: float
    gap_positions: np.ndarray
    gap_ns: np.ndarray
    mean: np.ndarray
    periodic_sd: np.ndarray
    noise_sd: np.ndarray
    frequency_hz: float
    phases: np.ndarray


@dataclass(frozen=True)
class StreamPlan:
    """All blocks of one (User, Device), in time order."""

    user: str
    device: str
    clock_offset_ns: int
    grid_offsets: np.ndarray
    blocks: tuple[DeviceBlock, ...]

    @property
    def rows(self) -> int:
        """Rows of this stream."""
        return sum(block.rows for block in self.blocks)

    @property
    def start_ns(self) -> int:
        """True time of the stream's first block."""
        return self.blocks[0].start_ns if self.blocks else 0


@dataclass(frozen=True)
class DatasetPlan:
    """The whole data set: one stream per (User, Device)."""

    rows: int
    seed: int
    streams: tuple[StreamPlan, ...]
    device_activity_counts: dict[tuple[str, str], int]


def split_counts(total: int, weights: np.ndarray) -> np.ndarray:
    """Split `total` into integers proportional to `weights` (largest remainder; exact sum)."""
    weights = np.asarray(weights, dtype=float)
    if total == 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = total * weights / weights.sum()
    counts: np.ndarray = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def scaled_device_activity_counts(rows: int) -> dict[tuple[str, str], int]:
    """The real Device x gt counts scaled to `rows` in all (summing exactly to `rows`)."""
    cells = sorted(REAL_DEVICE_ACTIVITY_COUNTS)
    counts = split_counts(rows, np.array([REAL_DEVICE_ACTIVITY_COUNTS[c] for c in cells]))
    return {cell: int(count) for cell, count in zip(cells, counts, strict=True)}


def activity_means() -> dict[str, np.ndarray]:
    """Full-set mean x, y, z per gt; stairsup's completes the overall means of describe()."""
    means = {gt: np.array(value) for gt, value in ACTIVITY_MEANS.items()}
    totals = {gt: 0 for gt in ACTIVITIES}
    for (_, gt), count in REAL_DEVICE_ACTIVITY_COUNTS.items():
        totals[gt] += count
    overall = np.array([REAL_DESCRIBE[axis][0] for axis in "xyz"])
    known = sum(totals[gt] * means[gt] for gt in means)
    means["stairsup"] = (overall * REAL_ROWS - known) / totals["stairsup"]
    return means


def _user_activity_rows(counts: dict[tuple[str, str], int]) -> dict[tuple[str, str, str], int]:
    """Rows per (user, device, gt): users in USER_WEIGHTS proportions, activities as counted."""
    overall = {
        gt: sum(c for (_, g), c in REAL_DEVICE_ACTIVITY_COUNTS.items() if g == gt)
        for gt in ACTIVITIES
    }
    total = sum(overall.values())
    weights = np.empty((len(USERS), len(ACTIVITIES)))
    for u, user in enumerate(USERS):
        shares = USER_ACTIVITY_SHARES.get(user, {gt: overall[gt] / total for gt in ACTIVITIES})
        for g, gt in enumerate(ACTIVITIES):
            weights[u, g] = shares[gt] * SPARSE_ACTIVITIES.get((user, gt), 1.0)
    user_share = np.array([USER_WEIGHTS[user] for user in USERS])
    column_share = np.array([overall[gt] for gt in ACTIVITIES], dtype=float)
    # Iterative proportional fitting: rows (users) to their weights, columns to the counts.
    for _ in range(200):
        weights *= (user_share / user_share.sum() * total / weights.sum(axis=1))[:, None]
        weights *= (column_share / weights.sum(axis=0))[None, :]
    rows: dict[tuple[str, str, str], int] = {}
    for device in DEVICES:
        for g, gt in enumerate(ACTIVITIES):
            split = split_counts(counts[(device, gt)], weights[:, g])
            for u, user in enumerate(USERS):
                rows[(user, device, gt)] = int(split[u])
    return rows


def _session_segments(
    user: str, rows: dict[tuple[str, str, str], int], rng: np.random.Generator
) -> list[tuple[str, tuple[int, ...], str]]:
    """A user's blocks in order: (gt, rows per device, what precedes it: pause/turn/none)."""
    null_split = [
        split_counts(
            rows[(user, device, "null")],
            np.array(NULL_WEIGHTS) * rng.uniform(0.8, 1.2, len(NULL_WEIGHTS)),
        )
        for device in DEVICES
    ]
    round_weights = rng.uniform(0.8, 1.2, STAIRS_ROUNDS)
    stairs = {
        gt: [split_counts(rows[(user, device, gt)], round_weights) for device in DEVICES]
        for gt in ("stairsup", "stairsdown")
    }
    segments: list[tuple[str, tuple[int, ...], str]] = []
    for position, activity in enumerate(ACTIVITY_ORDER):
        if position:
            nulls = tuple(int(split[position - 1]) for split in null_split)
            segments.append(("null", nulls, "pause"))
        if activity == "stairs":
            for turn in range(STAIRS_ROUNDS):
                for gt in ("stairsup", "stairsdown"):
                    per_device = tuple(int(split[turn]) for split in stairs[gt])
                    first = turn == 0 and gt == "stairsup"
                    segments.append((gt, per_device, "none" if first else "turn"))
        else:
            per_device = tuple(rows[(user, device, activity)] for device in DEVICES)
            segments.append((activity, per_device, "none"))
    return [segment for segment in segments if any(segment[1])]


def _user_means(
    rows: dict[tuple[str, str, str], int], rng: np.random.Generator
) -> dict[tuple[str, str], np.ndarray]:
    """Mean x, y, z per (user, gt): the activity's mean plus a user offset, the offsets centred
    (weighted by rows) so that each activity's overall mean stays the real one."""
    base = activity_means()
    result: dict[tuple[str, str], np.ndarray] = {}
    for gt in ACTIVITIES:
        amplitude = np.array(USER_OFFSETS[gt])
        offsets = np.empty((len(USERS), 3))
        for u, user in enumerate(USERS):
            draw = rng.normal(0.0, 1.0, 3)
            pattern = STAIRS_PATTERN.get(gt)
            if pattern is not None:
                scale = STAIRS_ORIENTATION[user] * (1.0 + 0.25 * draw)
                draw = np.where(np.array(pattern) != 0, np.array(pattern) * scale, draw)
            offsets[u] = amplitude * draw
        weight = np.array(
            [sum(rows[(user, device, gt)] for device in DEVICES) for user in USERS], dtype=float
        )
        if weight.sum() > 0:
            offsets -= (weight[:, None] * offsets).sum(axis=0) / weight.sum()
        for u, user in enumerate(USERS):
            result[(user, gt)] = base[gt] + offsets[u]
    return result


def _moving_scale(
    rows: dict[tuple[str, str, str], int], means: dict[tuple[str, str], np.ndarray]
) -> np.ndarray:
    """Per-axis factor on the moving activities' spread that makes the overall stddev real."""
    total = sum(rows.values())
    second_moment = np.zeros(3)
    moving = np.zeros(3)
    first_moment = np.zeros(3)
    for (user, _, gt), count in rows.items():
        spread = np.array(ACTIVITY_SPREADS[gt]) ** 2
        mean = means[(user, gt)]
        first_moment += count * mean
        second_moment += count * mean**2
        if gt in MOVING:
            moving += count * spread
        else:
            second_moment += count * spread
    target = np.array([REAL_DESCRIBE[axis][1] for axis in "xyz"]) ** 2
    mean = first_moment / total
    needed = (target + mean**2) * total - second_moment
    return np.sqrt(np.maximum(needed, 0.0) / moving)


def plan_dataset(rows: int = REAL_ROWS, seed: int = 42) -> DatasetPlan:
    """Plan a data set of `rows` rows, deterministic for `seed` (a non-negative integer).

    Raises:
        ValueError: for fewer than MIN_ROWS rows or a negative seed.
    """
    if rows < MIN_ROWS:
        msg = f"rows must be at least {MIN_ROWS:,}, got {rows:,}"
        raise ValueError(msg)
    if seed < 0:
        msg = f"seed must be a non-negative integer, got {seed}"
        raise ValueError(msg)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    scale = rows / REAL_ROWS
    counts = scaled_device_activity_counts(rows)
    user_rows = _user_activity_rows(counts)
    means = _user_means(user_rows, rng)
    moving_scale = _moving_scale(user_rows, means)
    streams: list[StreamPlan] = []
    for user in USERS:
        streams.extend(_plan_user(user, user_rows, means, moving_scale, scale, rng))
    return DatasetPlan(rows=rows, seed=seed, streams=tuple(streams), device_activity_counts=counts)


def _plan_user(
    user: str,
    rows: dict[tuple[str, str, str], int],
    means: dict[tuple[str, str], np.ndarray],
    moving_scale: np.ndarray,
    scale: float,
    rng: np.random.Generator,
) -> list[StreamPlan]:
    intervals = rng.uniform(*SAMPLE_INTERVAL_NS, len(DEVICES))
    clock_offsets = [int(rng.uniform(*CLOCK_OFFSET_NS[device])) for device in DEVICES]
    grid_offsets = rng.integers(0, SENSOR_STEP, (len(DEVICES), 3))
    frequencies = {gt: rng.uniform(*STEP_FREQUENCY_HZ[gt]) for gt in ACTIVITIES}
    blocks: list[list[DeviceBlock]] = [[] for _ in DEVICES]
    next_index = [0] * len(DEVICES)
    clock = SESSION_STARTS_NS[user]
    for gt, per_device, before in _session_segments(user, rows, rng):
        if before == "pause":
            clock += int(rng.uniform(*PAUSE_S) * 1e9 * scale)
        elif before == "turn":
            clock += int(rng.uniform(*TURN_S) * 1e9 * scale)
        busy = max(n * interval for n, interval in zip(per_device, intervals, strict=True))
        span = busy * (1.0 + rng.uniform(*GAP_SHARE))
        spread = np.array(ACTIVITY_SPREADS[gt]) * (moving_scale if gt in MOVING else 1.0)
        periodic_share = PERIODIC_SHARE[gt in MOVING]
        for d, count in enumerate(per_device):
            gap_positions, gap_ns = _gaps(count, span - count * intervals[d], rng)
            device_mean = means[(user, gt)] + rng.normal(0.0, 0.1, 3) * USER_OFFSETS[gt]
            blocks[d].append(
                DeviceBlock(
                    gt=gt,
                    rows=count,
                    first_index=next_index[d],
                    start_ns=clock,
                    interval_ns=float(intervals[d]),
                    gap_positions=gap_positions,
                    gap_ns=gap_ns,
                    mean=device_mean,
                    periodic_sd=spread * np.sqrt(periodic_share),
                    noise_sd=spread * np.sqrt(1.0 - periodic_share),
                    frequency_hz=float(frequencies[gt] * rng.uniform(0.97, 1.03)),
                    phases=rng.uniform(0.0, 2 * np.pi, (3, len(HARMONICS))),
                )
            )
            next_index[d] += count
        clock += int(span)
    return [
        StreamPlan(
            user=user,
            device=device,
            clock_offset_ns=clock_offsets[d],
            grid_offsets=grid_offsets[d],
            blocks=tuple(block for block in blocks[d] if block.rows),
        )
        for d, device in enumerate(DEVICES)
    ]


MAX_GAPS = 512


def _gaps(rows: int, idle_ns: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Where a block's idle time goes: one gap before the first sample, the rest at random
    sample positions, about MEAN_GAP_S each."""
    if rows == 0 or idle_ns <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    count = min(1 + int(rng.poisson(idle_ns / (MEAN_GAP_S * 1e9))), rows, MAX_GAPS)
    positions = np.sort(np.concatenate([[0], rng.integers(1, max(rows, 2), count - 1)]))
    durations = (idle_ns * rng.dirichlet(np.ones(count))).astype(np.int64)
    return positions.astype(np.int64), durations
