"""Rows of a planned data set, as numpy chunks, merged into one stream ordered by Arrival_Time.

Each (User, Device) stream is generated piece by piece (at most `PIECE_ROWS` rows, each piece
with its own seed), so memory stays bounded whatever the size; the pieces of all streams are
merged by Arrival_Time. The same plan gives the same rows, byte for byte.

Per sample: the true time advances by a jittered ~5 ms step (steps of one piece sum to the
planned span) plus the block's gaps; Creation_Time is the true time on the phone's clock
(nanoseconds); Arrival_Time is when the app got it (a small, occasionally larger delivery
delay, never earlier than the previous sample's, so same-millisecond runs occur); x, y, z are
a periodic movement plus smoothed noise around the block's mean, quantised like the sensor
(multiples of 70/65536 rad/s from a per-axis offset).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from .plan import (
    ACTIVITIES,
    GRID,
    HARMONICS,
    MAX_GRID,
    SENSOR_STEP,
    DatasetPlan,
    DeviceBlock,
    StreamPlan,
)

PIECE_ROWS = 32768
JITTER_SHAPE = 25.0
"""Gamma shape of the sample steps: coefficient of variation 0.2 (p5 3.4 ms, p95 6.6 ms)."""
DELAY_NS = 400_000
"""Delivery delay of a sample (Arrival_Time - true time): this plus an exponential extra, plus
now and then a stall; fitted to the real Arrival_Time steps (12 % repeats, p95 12 ms, §7)."""
MEAN_EXTRA_DELAY_NS = 2_000_000
STALL_PROBABILITY = 0.03
STALL_NS = (4_000_000, 20_000_000)
NOISE_TAPS = 12
NOISE_KERNEL = 0.7 ** np.arange(NOISE_TAPS)
NOISE_KERNEL /= np.sqrt((NOISE_KERNEL**2).sum())


class Chunk(NamedTuple):
    """Rows as columns. `label` numbers the (stream, gt) pair: stream * len(ACTIVITIES) + gt."""

    arrival_ms: np.ndarray
    creation_ns: np.ndarray
    sample_index: np.ndarray
    label: np.ndarray
    kx: np.ndarray
    ky: np.ndarray
    kz: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_ms)

    def take(self, selector: slice | np.ndarray) -> Chunk:
        """The rows picked by a slice or an index array."""
        return Chunk(*(column[selector] for column in self))


def concat(chunks: list[Chunk]) -> Chunk:
    """One chunk of the rows of several."""
    return Chunk(*(np.concatenate(columns) for columns in zip(*chunks, strict=True)))


def stream_chunks(plan: DatasetPlan, stream_id: int) -> Iterator[Chunk]:
    """The rows of one (User, Device) stream in order, at most PIECE_ROWS at a time."""
    stream = plan.streams[stream_id]
    arrival_floor = 0  # ns; no sample arrives before the previous one (in ms)
    for block_id, block in enumerate(stream.blocks):
        for chunk in _block_pieces(plan.seed, stream_id, block_id, stream, block, arrival_floor):
            arrival_floor = int(chunk.arrival_ms[-1]) * 1_000_000
            yield chunk


def _block_pieces(
    seed: int,
    stream_id: int,
    block_id: int,
    stream: StreamPlan,
    block: DeviceBlock,
    arrival_floor: int,
) -> Iterator[Chunk]:
    label = stream_id * len(ACTIVITIES) + ACTIVITIES.index(block.gt)
    elapsed = 0.0  # ns since the block's start, of the previous sample
    noise_tail: np.ndarray | None = None
    for piece, first in enumerate(range(0, block.rows, PIECE_ROWS)):
        count = min(PIECE_ROWS, block.rows - first)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, stream_id, block_id, piece]))
        weights = rng.gamma(JITTER_SHAPE, size=count)
        steps = block.interval_ns * weights / weights.mean()
        if first == 0:
            steps[0] = 0.0
        lo, hi = np.searchsorted(block.gap_positions, [first, first + count])
        np.add.at(steps, block.gap_positions[lo:hi] - first, block.gap_ns[lo:hi])
        times = elapsed + np.cumsum(steps)
        elapsed = float(times[-1])
        sample_ns = block.start_ns + np.rint(times).astype(np.int64)

        delay = DELAY_NS + rng.exponential(MEAN_EXTRA_DELAY_NS, count)
        stalled = rng.random(count) < STALL_PROBABILITY
        delay[stalled] += rng.uniform(*STALL_NS, int(stalled.sum()))
        arrival_ns = np.maximum.accumulate(sample_ns + delay.astype(np.int64))
        arrival_ns = np.maximum(arrival_ns, arrival_floor)
        arrival_floor = int(arrival_ns[-1])

        if noise_tail is None:
            noise_tail = rng.standard_normal((NOISE_TAPS - 1, 3))
        white = np.concatenate([noise_tail, rng.standard_normal((count, 3))])
        noise_tail = white[-(NOISE_TAPS - 1) :]
        noise = np.stack(
            [np.convolve(white[:, axis], NOISE_KERNEL, mode="valid") for axis in range(3)],
            axis=1,
        )
        seconds = (times * 1e-9)[:, None]
        periodic = np.zeros((count, 3))
        for harmonic, amplitude in enumerate(HARMONICS, start=1):
            angle = 2 * np.pi * harmonic * block.frequency_hz * seconds
            periodic += amplitude * np.sin(angle + block.phases[:, harmonic - 1])
        values = block.mean + block.periodic_sd * periodic + block.noise_sd * noise
        grid = _quantise(values, stream.grid_offsets)

        yield Chunk(
            arrival_ms=arrival_ns // 1_000_000,
            creation_ns=sample_ns + stream.clock_offset_ns,
            sample_index=np.arange(block.first_index + first, block.first_index + first + count),
            label=np.full(count, label, dtype=np.int16),
            kx=grid[:, 0],
            ky=grid[:, 1],
            kz=grid[:, 2],
        )


def _quantise(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Grid units (1/65536 rad/s) of the sensor reading nearest to each value."""
    steps = np.rint((values * GRID - offsets) / SENSOR_STEP)
    grid = offsets + SENSOR_STEP * steps
    clipped: np.ndarray = np.clip(grid, -MAX_GRID, MAX_GRID).astype(np.int32)
    return clipped


def merged_chunks(plan: DatasetPlan) -> Iterator[Chunk]:
    """All rows of the plan, ordered by Arrival_Time (ties: stream order), in chunks."""
    waiting = sorted(range(len(plan.streams)), key=lambda s: plan.streams[s].start_ns)
    sources: dict[int, Iterator[Chunk]] = {}
    buffers: dict[int, Chunk] = {}

    def refill(stream_id: int) -> None:
        chunk = next(sources[stream_id], None)
        if chunk is None:
            del sources[stream_id]
            buffers.pop(stream_id, None)
        else:
            buffers[stream_id] = chunk

    while waiting or buffers:
        if not buffers:
            stream_id = waiting.pop(0)
            sources[stream_id] = stream_chunks(plan, stream_id)
            refill(stream_id)
            continue
        horizon = min(int(chunk.arrival_ms[-1]) for chunk in buffers.values())
        while waiting and plan.streams[waiting[0]].start_ns // 1_000_000 <= horizon:
            stream_id = waiting.pop(0)
            sources[stream_id] = stream_chunks(plan, stream_id)
            refill(stream_id)
            if stream_id in buffers:
                horizon = min(horizon, int(buffers[stream_id].arrival_ms[-1]))
        parts = []
        for stream_id in sorted(buffers):
            chunk = buffers[stream_id]
            cut = int(np.searchsorted(chunk.arrival_ms, horizon, side="right"))
            if cut:
                parts.append(chunk.take(slice(0, cut)))
            if cut == len(chunk):
                refill(stream_id)
            else:
                buffers[stream_id] = chunk.take(slice(cut, None))
        if parts:
            merged = concat(parts)
            yield merged.take(np.argsort(merged.arrival_ms, kind="stable"))
