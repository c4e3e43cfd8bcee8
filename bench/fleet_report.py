"""The fleet section's outputs (`run_all.py --sections fleet[,latency,demo]`): its table, its
goals (those of the issue "A fleet, not two phones": the fleet, the floor per batch), its plot,
and their section of BENCHMARKS.md (between the ``fleet-table`` markers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FLEET_START = "<!-- fleet-table:start -->"
FLEET_END = "<!-- fleet-table:end -->"
TREND_BATCHES = 10
"""Batches a run needs before its memory has a trend beside its start-up."""
FLEET_PLOT = "bench/fleet.png"
FINE_KEYS_PER_DEVICE = 63
"""Fine keys (Device, gt, Model, User) of one recorded device in the fleet's 1,000 rows."""


def _keys(devices: int) -> int:
    return 2 * devices * FINE_KEYS_PER_DEVICE


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.2f} MB"


def _memory(run: dict[str, Any]) -> str:
    parts = []
    for kind, label in (("python_mb", "Python"), ("jvm_mb", "JVM")):
        figures = (run.get("memory") or {}).get(kind)
        if figures:
            parts.append(
                f"{label} {figures['first_third_mb']:,.0f} -> {figures['last_third_mb']:,.0f} MB"
            )
    return "; ".join(parts) or "-"


def _parts(run: dict[str, Any]) -> str:
    parts = run.get("median_parts_s") or {}
    if not parts:
        return "-"
    spark = run.get("median_spark_s")
    text = ", ".join(f"{name} {seconds:.2f}" for name, seconds in parts.items())
    return text + ("" if spark is None else f"; Spark's own {spark:.2f}")


def fleet_table(results: dict[str, Any]) -> str:
    """One row per engine and fleet size, then the batch after the 4,000-device fleet."""
    fleet = results["fleet"]
    runs = fleet["runs"]
    base = {
        engine: runs[f"{engine}/{min(int(k.split('/')[1]) for k in runs if k.startswith(engine))}"]
        for engine in {key.split("/")[0] for key in runs}
    }
    lines = [
        f"Fleet runs: the same {fleet['rows']:,} generated rows fanned out with `--devices N`, "
        f"{fleet['events']:,} events a run, or two passes over the rows where that is more "
        f"(`--loop`), available-now, 500,000 events a batch; ratios to the same engine at the "
        f"smallest fleet; memory: the first and last thirds of the run's RSS samples.",
        "",
        "| devices | fine keys | engine | events | events/s | ratio | median batch (s) | "
        "its parts, median (s) | checkpoint bytes per batch | memory, first -> last third | load |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |",
    ]
    for key, run in sorted(runs.items(), key=lambda item: (item[1]["devices"], item[0])):
        engine = key.split("/")[0]
        ratio = run["events_per_s"] / base[engine]["events_per_s"]
        lines.append(
            f"| {2 * run['devices']:,} | {_keys(run['devices']):,} | {engine} | "
            f"{run['events']:,} | {run['events_per_s']:,.0f} | {ratio:.2f}x | "
            f"{run.get('median_trigger_s', '-')} | {_parts(run)} | "
            f"{_mb(run['checkpoint_bytes_per_batch'])} | {_memory(run)} | {run['load']:.1f} |"
        )
    after = fleet.get("after")
    if after:
        lines += [
            "",
            f"After the {after['devices']:,}-device fleet ({after['fleet_events']:,} events, "
            f"a continuous processor, trigger 1 s): one more batch of {after['batch_rows']:,} "
            f"events took {after['batch_s']:.2f} s "
            f"({', '.join(f'{k} {v / 1000:.2f}' for k, v in after['parts_ms'].items())} s) "
            f"and added {_mb(after['checkpoint_bytes_added'])} to the checkpoint "
            f"(its delta {_mb(after['state_bytes'])}; state {after['state_rows']:,} rows; "
            f"load {after['load']:.1f}).",
        ]
    return "\n".join(lines) + "\n"


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**missed**")


def fleet_goals(results: dict[str, Any]) -> str:
    """The goals of the fleet issue beside this run's figures."""
    rows: list[Goal] = []
    runs = (results.get("fleet") or {}).get("runs", {})
    fused = sorted(
        (run for key, run in runs.items() if key.startswith("fused/")),
        key=lambda run: run["devices"],
    )
    if len(fused) >= 2:
        small, large = fused[0], fused[-1]
        ratio = large["events_per_s"] / small["events_per_s"]
        rows.append(
            (
                f"fused engine at {_keys(large['devices']):,} fine keys: >= 0.5x its own "
                f"throughput at {_keys(small['devices']):,}",
                f"{ratio:.2f}x ({large['events_per_s']:,.0f} vs {small['events_per_s']:,.0f} "
                f"events/s)",
                ratio >= 0.5,
            )
        )
        per_key = [(run, _bytes_per_touched(run)) for run in fused]
        spread = max(b for _, b in per_key) / max(min(b for _, b in per_key), 1e-9)
        rows.append(
            (
                "bytes written per batch grow with the keys a batch touched, not with all keys",
                "checkpoint bytes per key touched: "
                + ", ".join(
                    f"{b:,.0f} at {_keys(run['devices']):,} fine keys ({run['state_rows']:,} kept)"
                    for run, b in per_key
                )
                + f" (spread {spread:.1f}x while the state grew "
                f"{large['state_rows'] / max(small['state_rows'], 1):,.0f}x)",
                spread <= 3,
            )
        )
        # A trend needs batches: a run of two or three batches is mostly its start-up.
        long = [run for run in fused if run.get("batches", 0) >= TREND_BATCHES]
        flat = [
            run
            for run in long
            if all(
                (run.get("memory") or {}).get(kind)
                and run["memory"][kind]["last_third_mb"]
                <= 1.1 * run["memory"][kind]["first_third_mb"]
                for kind in ("python_mb", "jvm_mb")
            )
        ]
        rows.append(
            (
                f"memory flat over each fused run of {TREND_BATCHES} batches or more (last third "
                "within 10 % of the first)",
                f"{len(flat)} of {len(long)} runs; "
                + "; ".join(
                    f"at {2 * run['devices']:,} devices ({run['batches']} batches) {_memory(run)}"
                    for run in long
                ),
                (len(flat) == len(long)) if long else None,
            )
        )
    after = (results.get("fleet") or {}).get("after")
    if after:
        rows.append(
            (
                f"after the {after['devices']:,}-device run, a batch of a few thousand events "
                "under 1 s, adding under 2 MB to the checkpoint",
                f"{after['batch_rows']:,} events in {after['batch_s']:.2f} s, "
                f"{_mb(after['checkpoint_bytes_added'])} added",
                after["batch_s"] < 1 and after["checkpoint_bytes_added"] < 2e6,
            )
        )
    rows += latency_goals(results, ((5_000, 1.0), (50_000, 2.0)))
    rows += demo_goal(results)
    lines = ["| goal | this run | verdict |", "| --- | --- | --- |"]
    lines += [f"| {goal} | {figure} | {_verdict(met)} |" for goal, figure, met in rows]
    return "\n".join(lines) + "\n"


Goal = tuple[str, str, bool | None]
"""A goal, this run's figure, and whether it was met (None: not measured)."""


def latency_goals(results: dict[str, Any], bounds: tuple[tuple[int, float], ...]) -> list[Goal]:
    """p99 latency under each bound at its rate (events/s), where the rate was measured."""
    goals: list[Goal] = []
    for rate, bound in bounds:
        latency = (results.get("latency") or {}).get(str(rate))
        if latency and latency.get("included"):
            goals.append(
                (
                    f"p99 latency under {bound:g} s at {rate:,} events/s",
                    f"p99 {latency['p99_s']:.2f} s (p50 {latency['p50_s']:.2f} s; "
                    f"load {latency['load']:.1f})",
                    latency["p99_s"] < bound,
                )
            )
    return goals


def demo_goal(results: dict[str, Any]) -> list[Goal]:
    """`make demo` under one second of events behind at its end, where it was measured."""
    demo = results.get("demo")
    if not demo:
        return []
    return [
        (
            "`make demo`: the processor keeps up; lag at the end under one second of events",
            f"{demo['lag_events']:,} events = {demo['lag_s']} s (load {demo['load']:.1f})",
            demo["lag_s"] is not None and demo["lag_s"] < 1,
        )
    ]


def _bytes_per_touched(run: dict[str, Any]) -> float:
    """Checkpoint bytes of the run (deltas, snapshots, Spark's logs) per state row its batches
    touched (the rows of their aggregates)."""
    return run["checkpoint_bytes"] / max(run.get("touched_rows") or 0, 1)


def fleet_plot(results: dict[str, Any], path: Path) -> None:
    """Events/s and checkpoint bytes per batch against fine keys, per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["fleet"]["runs"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for engine, color in (
        ("fused", "tab:green"),
        ("per-query", "tab:orange"),
        ("per-query+rocksdb", "tab:red"),
    ):
        mine = sorted(
            (run for key, run in runs.items() if key.startswith(f"{engine}/")),
            key=lambda run: run["devices"],
        )
        if not mine:
            continue
        keys = [_keys(run["devices"]) for run in mine]
        left.plot(keys, [run["events_per_s"] for run in mine], "o-", color=color, label=engine)
        right.plot(
            keys,
            [run["checkpoint_bytes_per_batch"] / 1e6 for run in mine],
            "o-",
            color=color,
            label=engine,
        )
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("fine keys (Device, gt, Model, User)")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    left.set_ylim(bottom=0)
    left.set_ylabel("events/s over the run")
    left.set_title("Throughput by fleet size")
    right.set_yscale("log")
    right.set_ylabel("MB written to the checkpoint per batch")
    right.set_title("Checkpoint bytes per batch")
    figure.suptitle(
        f"hhar-stream fleet benchmark ({results['fleet']['events']:,} events a run; load "
        f"{results['load_at_start'][0]:.1f} at start, {results['started_at']})",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
