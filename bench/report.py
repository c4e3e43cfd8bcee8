"""The suite's outputs from its results: one Markdown table, the plot, BENCHMARKS.md's section.

`render_outputs(results, out, repo)` returns the table and writes ``out/table.md``,
``out/benchmarks.png`` and, with `write_docs`, the table section of ``BENCHMARKS.md`` (between
its ``bench-table`` markers) and the plot beside it as ``bench/benchmarks.png``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fleet_report import (
    FLEET_END,
    FLEET_PLOT,
    FLEET_START,
    Goal,
    demo_goal,
    fleet_goals,
    fleet_plot,
    fleet_table,
    latency_goals,
)

START = "<!-- bench-table:start -->"
END = "<!-- bench-table:end -->"
PLOT = "bench/benchmarks.png"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def _mb(value: float | None) -> str:
    return "-" if not value else f"{value:,.0f} MB"


def _rows(value: int) -> str:
    if value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value // 1_000_000}M"
    if value >= 1000 and value % 1000 == 0:
        return f"{value // 1000}k"
    return f"{value:,}"


def _processor_rss(run: dict[str, Any]) -> str:
    memory = run["memory"]
    return f"JVM {_mb(memory['jvm_mb'])} + Python {_mb(memory['python_mb'])}"


def _cpu(run: dict[str, Any]) -> str:
    """The CPU time of the run's process tree, when it was measured."""
    cpu = run["memory"].get("cpu_s")
    return f"; CPU of the whole process {cpu:,.0f} s" if cpu else ""


def _load(run: dict[str, Any]) -> str:
    return f"{run['load_before']:.1f}"


def _workers(name: str) -> int:
    return int(name.removeprefix("hhar-"))


def _producer_rows(producer: dict[str, Any], runs: dict[str, Any]) -> list[list[str]]:
    """Section 1: kcat, the bare client loop and hhar with each number of workers, whole
    processes on the same file, the medians of the runs; ratios to the bare loop."""
    contenders = producer["contenders"]
    bare, kcat = contenders["bare"]["rows_per_s"], contenders["kcat"]["rows_per_s"]
    one = contenders.get("hhar-1", {}).get("rows_per_s")
    size = _rows(producer["rows"])
    rows = []
    for name, figures in contenders.items():
        rate = figures["rows_per_s"]
        time = f"{figures['wall_s']:.2f} s"
        if name == "kcat":
            what, ratio = f"`kcat -P`, one file of {size} JSON lines", f"{rate / bare:.2f}x bare"
        elif name == "bare":
            what = (
                "bare confluent-kafka loop (read lines, `produce()`; same compression, "
                "linger, batch size, idempotence), same file"
            )
            ratio = "1.00x bare (reference)"
        else:
            workers = _workers(name)
            what = (
                f"`hhar produce --max`, {workers} worker{'s' if workers > 1 else ''} "
                "(validation, key, timestamp, transactions), same file"
            )
            ratio = f"{rate / bare:.2f}x bare; {rate / kcat:.2f}x kcat"
            if workers > 1 and one:
                ratio += f"; {rate / one:.2f}x 1 worker"
            time += f" (replay {figures['loop_s']:.2f} s)"
        rows.append(
            [
                "1",
                what,
                _rate(rate),
                ratio,
                time,
                _mb(figures["peak_rss_mb"]),
                f"{figures['load']:.1f}",
            ]
        )
    if producer.get("perf_events_per_s"):
        run = runs["producer_performance"]
        rows.append(
            [
                "1",
                "Kafka `ProducerPerformance` (project jars), random lines of the same data, no key",
                _rate(producer["perf_events_per_s"]),
                f"{producer['perf_events_per_s'] / bare:.2f}x bare",
                f"{producer['perf_wall_s']:.1f} s",
                _mb(producer["perf_rss_mb"]),
                _load(run),
            ]
        )
    return rows


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The rows of the one table: # | measurement | result | ratio | time | peak RSS | load."""
    runs = results["runs"]
    rows: list[list[str]] = []

    producer = results.get("producer")
    if producer:
        rows += _producer_rows(producer, runs)

    rows += _engine_rows(results)
    for rate, latency in (results.get("latency") or {}).items():
        if not latency.get("included"):
            continue
        processor = runs[f"latency_processor_{rate}"]
        producer_run = runs[f"latency_producer_{rate}"]
        rows.append(
            [
                "3",
                f"latency at {int(rate):,} events/s for {latency['seconds']:.0f} s (producer "
                f"`--rate --now`, commits every {latency['commit_interval_s']:g} s; fused engine, "
                f"trigger {latency['trigger']}): p50 / p95 / p99 (max)",
                f"{latency['p50_s']:.2f} / {latency['p95_s']:.2f} / {latency['p99_s']:.2f} s "
                f"({latency['max_s']:.2f} s)",
                f"{latency['included']:,} of {latency['events']:,} events",
                f"{producer_run['wall_s']:.0f} s",
                f"producer {_mb(producer_run['memory']['python_mb'])}; {_processor_rss(processor)}",
                f"{latency['load']:.1f}",
            ]
        )

    sizes = results["sizes"]
    produced = [runs.get(f"produce_{rows_}") for rows_ in sizes]
    if all(produced):
        label = " / ".join(_rows(size) for size in sizes)
        rows.append(
            [
                "4",
                f"producer peak RSS, `produce --max` of {label} rows",
                " / ".join(_mb(run["memory"]["python_mb"]) for run in produced),
                "",
                "",
                "",
                "",
            ]
        )
        with_workers = [runs.get(f"produce_workers_{rows_}") for rows_ in sizes]
        if all(with_workers):
            rows.append(
                [
                    "4",
                    f"producer peak RSS per worker (the largest process), `produce --max "
                    f"--workers 2` of {label} rows",
                    " / ".join(_mb(run["memory"]["python_mb"]) for run in with_workers),
                    " / ".join(f"{run['events_per_s']:,.0f}/s" for run in with_workers),
                    "",
                    "",
                    "",
                ]
            )
    memory = results.get("memory")
    if memory and "jvm" in memory:
        jvm, python = memory["jvm"], memory["python"]
        rows.append(
            [
                "4",
                f"processor memory over {memory['seconds'] / 60:.0f} min at "
                f"{memory['rate']:,} events/s (fused, all queries, 2 GB driver heap): first third "
                "-> last third (slope)",
                f"JVM {jvm['first_third_mb']:,.0f} -> {jvm['last_third_mb']:,.0f} MB "
                f"({jvm['slope_mb_per_min']:+.1f} MB/min); Python {python['first_third_mb']:,.0f}"
                f" -> {python['last_third_mb']:,.0f} MB ({python['slope_mb_per_min']:+.1f} MB/min)",
                f"max JVM {jvm['max_mb']:,.0f} MB",
                f"{memory['seconds']:.0f} s",
                "",
                f"{memory['load']:.1f}",
            ]
        )

    full = results.get("full")
    if full:
        produce = runs["full_produce"]
        rows.append(
            [
                "5",
                f"the full {full['events']:,} rows: `produce --max` while `process` (fused, "
                "all queries) runs, until every event is counted",
                f"{full['end_to_end_s']} s end to end"
                if full["end_to_end_s"]
                else "not all counted",
                f"{full['events'] / full['end_to_end_s']:,.0f} events/s"
                if full["end_to_end_s"]
                else "",
                f"produce {produce['wall_s']:.0f} s",
                _processor_rss(runs["full_processor"]),
                f"{full['load']:.1f}",
            ]
        )
    demo = results.get("demo")
    if demo:
        rows.append(
            [
                "6",
                f"`hhar demo` for {demo['seconds']:.0f} s: events the processor is behind "
                "at its end (events topic offsets - counted)",
                f"{demo['lag_events']:,} events",
                f"{demo['lag_s']} s of events at {demo['rate']:,.0f} events/s",
                "",
                _processor_rss(runs["demo"]),
                f"{demo['load']:.1f}",
            ]
        )
    return rows


def _engine_rows(results: dict[str, Any]) -> list[list[str]]:
    """Section 2: the same events read by the ceiling and both engines; the file stream."""
    runs = results["runs"]
    ceiling = runs.get("ceiling")
    rows = []
    for name, what in (
        ("ceiling", "read-only ceiling: Spark reads the topic and counts (bench/ceiling.py)"),
        ("fused_engine", "fused engine, all queries and bad records, one streaming query"),
        ("per_query_engine", "per-query engine, all queries, one streaming query each"),
    ):
        run = runs.get(name)
        if not run:
            continue
        ratio = f"{run['events_per_s'] / ceiling['events_per_s']:.2f}x ceiling" if ceiling else ""
        if name == "fused_engine" and runs.get("per_query_engine"):
            ratio += f"; {run['events_per_s'] / runs['per_query_engine']['events_per_s']:.1f}x "
            ratio += "per-query"
        rows.append(
            [
                "2",
                f"{what}, {_rows(run['events'])} events in Kafka, available-now, 500k per trigger",
                _rate(run["events_per_s"]),
                ratio,
                f"{run['seconds']:.1f} s{_cpu(run)}",
                _processor_rss(run),
                _load(run),
            ]
        )
    baseline = runs.get("baseline")
    if baseline:
        rows.append(
            [
                "2",
                f"the exercise's way: file source, 1 file per trigger ({baseline['batches']} "
                f"batches), one `groupBy(gt).count()`, {_rows(baseline['events'])} rows",
                _rate(baseline["events_per_s"]),
                f"{baseline['events_per_s'] / ceiling['events_per_s']:.2f}x ceiling"
                if ceiling
                else "",
                f"{baseline['seconds']:.1f} s{_cpu(baseline)}",
                _processor_rss(baseline),
                _load(baseline),
            ]
        )
    return rows


def render_table(results: dict[str, Any]) -> str:
    """The Markdown table with the machine and the load average above it."""
    m = results["machine"]
    start, end = results["load_at_start"], results.get("load_at_end")
    at_end = f"{end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f}" if end else "(not measured yet)"
    header = (
        f"Measured {results['started_at']} in one run of `make bench` "
        f"({results.get('suite_minutes', '?')} min) on {m['cores']} cores, {m['memory_gib']} GiB "
        f"RAM ({m['cpu']}); {m['java']}; Python {m['python']}; {m['kcat']}. Load average "
        f"(1/5/15 min) at the start {start[0]:.1f}/{start[1]:.1f}/{start[2]:.1f}, at the end "
        f"{at_end}; the Kafka broker runs on the same machine."
    )
    lines = [
        header,
        "",
        "| # | measurement | result | ratio | time | peak RSS | load |",
        "| --- | --- | ---: | --- | ---: | --- | ---: |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    profile = results.get("profile")
    if profile:
        derive = ", ".join(
            f"{name} {value * 1000:.1f}" for name, value in profile["derive_each_s"].items()
        )
        lines += [
            "",
            f"Profile of the processor's stages (bench/profile_processor.py: a batch read of the "
            f"same {profile['events']:,} events, one Spark job per stage, seconds): Kafka read "
            f"{profile['read_s']:.1f}; `from_json` alone {profile['json_only_s']:.1f}; "
            f"`json_object_keys` alone {profile['json_keys_s']:.1f}; `parse_events` with "
            f"validation {profile['parse_first_s']:.1f} the first time (code generation "
            f"included), {profile['parse_s']:.1f} the second; the fused engine's job per "
            f"micro-batch (parse, group by fine key and window, bad records aside) "
            f"{profile['batch_aggregate_s']:.1f} for {profile['batch_aggregate_rows']} rows; "
            f"for comparison, the per-query engine's windowed_activity {profile['windowed_s']:.1f}"
            f" and bad_records {profile['bad_records_s']:.1f}; on the driver, merging the "
            f"aggregate {profile['merge_s'] * 1000:.1f} ms and deriving each query as validated "
            f"records (ms): {derive}.",
        ]
    return "\n".join(lines) + "\n"


GOALS_START = "<!-- bench-goals:start -->"
GOALS_END = "<!-- bench-goals:end -->"


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**missed**")


def goals_table(results: dict[str, Any]) -> str:
    """The issues' goals beside this run's figures (a Markdown table)."""
    runs = results["runs"]
    rows: list[Goal] = []
    ceiling, fused = runs.get("ceiling"), runs.get("fused_engine")
    if ceiling and fused:
        ratio = fused["events_per_s"] / ceiling["events_per_s"]
        rows.append(
            (
                f"fused engine, all results and bad records, {_rows(fused['events'])} "
                "events: >= 0.45x the read-only ceiling in the same run",
                f"{ratio:.2f}x ({fused['events_per_s']:,.0f} vs "
                f"{ceiling['events_per_s']:,.0f} events/s)",
                ratio >= 0.45,
            )
        )
    if fused:
        rate = fused["events_per_s"]
        rows.append(
            (
                "fused engine: 200,000 events/s on a quiet machine",
                f"{rate:,.0f} events/s (load {fused['load_before']:.1f})",
                rate >= 200_000,
            )
        )
    rows += latency_goals(results, ((5_000, 1.5), (50_000, 3.0)))
    full = results.get("full")
    if full:
        seconds = full["end_to_end_s"]
        rows.append(
            (
                "the full data set produced and processed, both at once: under 90 s",
                f"{seconds} s" if seconds else "not all counted",
                bool(seconds) and seconds < 90,
            )
        )
    rows += demo_goal(results)
    memory = results.get("memory")
    if memory and "jvm" in memory:
        jvm, python = memory["jvm"], memory["python"]
        flat = all(
            abs(kind["last_third_mb"] - kind["first_third_mb"]) <= 0.1 * kind["first_third_mb"]
            for kind in (jvm, python)
        )
        rows.append(
            (
                f"memory flat over {memory['seconds'] / 60:.0f} minutes at "
                f"{memory['rate']:,} events/s (last third within 10 % of the first)",
                f"JVM {jvm['first_third_mb']:,.0f} -> {jvm['last_third_mb']:,.0f} MB, "
                f"Python {python['first_third_mb']:,.0f} -> "
                f"{python['last_third_mb']:,.0f} MB",
                flat,
            )
        )
    producer = results.get("producer")
    if producer:
        contenders = producer["contenders"]
        bare, one = contenders["bare"]["rows_per_s"], contenders["hhar-1"]["rows_per_s"]
        rows.append(
            (
                "one producer process (`--max`) >= 0.5x the bare client loop",
                f"{one / bare:.2f}x ({one:,.0f} vs {bare:,.0f} rows/s)",
                one / bare >= 0.5,
            )
        )
        if "hhar-2" in contenders:
            two = contenders["hhar-2"]["rows_per_s"]
            rows.append(
                (
                    f"`--workers 2` on {producer['cores']} cores >= 1.5x one worker",
                    f"{two / one:.2f}x ({two:,.0f} vs {one:,.0f} rows/s)",
                    two / one >= 1.5,
                )
            )
    for prefix, what in (
        ("produce", "producer memory"),
        ("produce_workers", "producer memory per worker (`--workers 2`)"),
    ):
        measured = [size for size in results["sizes"] if f"{prefix}_{size}" in runs]
        produced = [runs[f"{prefix}_{size}"]["memory"]["python_mb"] for size in measured]
        if produced:
            rows.append(
                (
                    f"{what} flat in the input size, < 200 MB",
                    " / ".join(f"{mb:,.0f}" for mb in produced)
                    + " MB for "
                    + " / ".join(_rows(size) for size in measured)
                    + " rows",
                    max(produced) < 200 and max(produced) - min(produced) < 50,
                )
            )
    lines = ["| goal | this run | verdict |", "| --- | --- | --- |"]
    lines += [f"| {goal} | {figure} | {_verdict(met)} |" for goal, figure, met in rows]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput, latency and memory over time in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(18, 5.4))

    bars: list[tuple[str, float, str]] = []
    producer = results.get("producer")
    if producer:
        for name, figures in producer["contenders"].items():
            label = {"kcat": "kcat -P", "bare": "bare client loop"}.get(
                name, f"hhar produce --max, {name.removeprefix('hhar-')} worker(s)"
            )
            bars.append(
                (
                    label,
                    figures["rows_per_s"],
                    "tab:blue" if name.startswith("hhar") else "tab:gray",
                )
            )
    for name, label, color in (
        ("ceiling", "Spark reads and counts (ceiling)", "tab:gray"),
        ("fused_engine", "fused engine, all results", "tab:green"),
        ("per_query_engine", "per-query engine", "tab:orange"),
        ("baseline", "file stream (the exercise)", "tab:gray"),
    ):
        if name in runs and runs[name].get("events_per_s"):
            bars.append((label, runs[name]["events_per_s"], color))
    positions = list(range(len(bars)))
    left.barh(positions, [value for _, value, _ in bars], color=[c for _, _, c in bars])
    left.set_yticks(positions, [label for label, _, _ in bars])
    left.invert_yaxis()
    if bars:  # a log scale needs a value; a run of some sections may have none
        left.set_xscale("log")
    left.set_xlabel("events/s (log scale)")
    left.set_title(
        f"Throughput (producer: 1M rows; processor: {_rows(results.get('engines_size', 0))} events)"
    )
    for index, (_, value, _) in enumerate(bars):
        left.text(value, index, f" {value:,.0f}", va="center", fontsize=8)

    for (rate, latency), color in zip(
        (results.get("latency") or {}).items(), ("tab:blue", "tab:red"), strict=False
    ):
        if not latency.get("included"):
            continue
        edges = latency["histogram_edges_s"]
        middle.stairs(
            latency["histogram_s"],
            edges,
            color=color,
            fill=True,
            alpha=0.35,
            label=f"{int(rate):,}/s: p50 {latency['p50_s']:.2f}, p99 {latency['p99_s']:.2f} s",
        )
        middle.axvline(latency["p99_s"], color=color, linestyle="--")
    if results.get("latency"):
        middle.legend(fontsize=8)
        middle.set_xlabel("append to the events topic -> first total_count record with it (s)")
        middle.set_ylabel("events")
        middle.set_title("Latency, fused engine (dashed: p99)")

    memory = results.get("memory")
    if memory and memory.get("samples"):
        minutes = [sample["t_s"] / 60 for sample in memory["samples"]]
        right.plot(
            minutes,
            [sample["jvm_mb"] for sample in memory["samples"]],
            color="tab:green",
            label="processor JVM RSS (MB)",
        )
        right.plot(
            minutes,
            [sample["python_mb"] for sample in memory["samples"]],
            color="tab:blue",
            label="processor Python RSS (MB)",
        )
        right.set_ylim(bottom=0)
        right.set_xlabel("minutes")
        right.set_ylabel("MB")
        right.legend(fontsize=8, loc="center right")
        right.set_title(f"Processor memory at {memory['rate']:,} events/s")
    m = results["machine"]
    figure.suptitle(
        f"hhar-stream benchmarks, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"load {results['load_at_start'][0]:.1f} at start "
        f"({results['started_at']})",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def replace_section(text: str, start: str, end: str, content: str) -> str:
    """`text` with what lies between the `start` and `end` markers replaced (or appended)."""
    before, found, rest = text.partition(start)
    if not found:
        before, rest = text.rstrip() + "\n\n", f"\n{end}\n"
    _, _, after = rest.partition(end)
    return f"{before}{start}\n{content}{end}{after}"


def update_docs(document: Path, table: str, goals: str) -> None:
    """Replace the table and goals sections of BENCHMARKS.md (between their markers)."""
    text = document.read_text() if document.exists() else "# Benchmarks\n"
    text = replace_section(text, START, END, table)
    document.write_text(replace_section(text, GOALS_START, GOALS_END, goals))


MAIN_SECTIONS = ("producer", "engines", "profile", "latency", "full", "demo", "memory")
"""The sections of the main table: BENCHMARKS.md's is replaced only by a run of them all."""


def render_outputs(results: dict[str, Any], out: Path, repo: Path, write_docs: bool) -> str:
    """Write the tables, the plots and (with `write_docs`) BENCHMARKS.md; return the tables.

    The main table and its goals are written to BENCHMARKS.md only by a run of every main
    section; the fleet section's own table, goals and plot whenever it ran.
    """
    sections = set(results.get("sections", MAIN_SECTIONS))
    tables = []
    if sections & set(MAIN_SECTIONS):
        table = render_table(results)
        (out / "table.md").write_text(table)
        plot(results, out / "benchmarks.png")
        tables.append(table)
        if write_docs and sections >= set(MAIN_SECTIONS):
            update_docs(repo / "BENCHMARKS.md", table, goals_table(results))
            shutil.copyfile(out / "benchmarks.png", repo / PLOT)
    if results.get("fleet"):
        fleet = fleet_table(results) + "\n" + fleet_goals(results)
        (out / "fleet.md").write_text(fleet)
        fleet_plot(results, out / "fleet.png")
        tables.append(fleet)
        if write_docs:
            document = repo / "BENCHMARKS.md"
            document.write_text(
                replace_section(document.read_text(), FLEET_START, FLEET_END, fleet)
            )
            shutil.copyfile(out / "fleet.png", repo / FLEET_PLOT)
    return "\n".join(tables)
