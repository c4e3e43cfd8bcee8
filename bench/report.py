"""The suite's outputs from its results: one Markdown table, the plot, BENCHMARKS.md's section.

`render_outputs(results, out, repo)` returns the table and writes ``out/table.md``,
``out/benchmarks.png`` and, with `write_docs`, the table section of ``BENCHMARKS.md`` (between
its ``bench-table`` markers) and the plot beside it as ``bench/benchmarks.png``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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
            what = ("bare confluent-kafka loop (read lines, `produce()`; same compression, "
                    "linger, batch size, idempotence), same file")
            ratio = "1.00x bare (reference)"
        else:
            workers = _workers(name)
            what = (f"`hhar produce --max`, {workers} worker{'s' if workers > 1 else ''} "
                    "(validation, key, timestamp, transactions), same file")
            ratio = f"{rate / bare:.2f}x bare; {rate / kcat:.2f}x kcat"
            if workers > 1 and one:
                ratio += f"; {rate / one:.2f}x 1 worker"
            time += f" (replay {figures['loop_s']:.2f} s)"
        rows.append(["1", what, _rate(rate), ratio, time, _mb(figures["peak_rss_mb"]),
                     f"{figures['load']:.1f}"])
    if producer.get("perf_events_per_s"):
        run = runs["producer_performance"]
        rows.append([
            "1", "Kafka `ProducerPerformance` (project jars), random lines of the same data, "
            "no key", _rate(producer["perf_events_per_s"]),
            f"{producer['perf_events_per_s'] / bare:.2f}x bare", f"{producer['perf_wall_s']:.1f} s",
            _mb(producer["perf_rss_mb"]), _load(run),
        ])
    return rows


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The rows of the one table: # | measurement | result | ratio | time | peak RSS | load."""
    runs, main = results["runs"], results["main_size"]
    rows: list[list[str]] = []

    producer = results.get("producer")
    if producer:
        rows += _producer_rows(producer, runs)

    baseline = runs.get("baseline")
    per_query = runs.get(f"per_query_{main}")
    fused = runs.get(f"fused_section2_{main}") or runs.get(f"fused_{main}")
    if baseline:
        base = baseline["events_per_s"]
        rows.append([
            "2", f"baseline, the exercise's way: file source, 1 file per trigger "
            f"({baseline['batches']} batches), one `groupBy(gt).count()`, {_rows(main)} rows",
            _rate(base), "1.00", f"{baseline['seconds']:.1f} s{_cpu(baseline)}",
            _processor_rss(baseline),
            _load(baseline),
        ])
        for label, run in (("per-query", per_query), ("fused", fused)):
            if not run:
                continue
            ratio = f"{run['events_per_s'] / base:.1f}x"
            if label == "fused" and per_query:
                ratio += f"; {run['events_per_s'] / per_query['events_per_s']:.1f}x per-query"
            rows.append([
                "2", f"{label} engine, all queries ({run['streaming_queries']} streaming "
                f"queries), {_rows(run['events'])} events in Kafka",
                _rate(run["events_per_s"]), ratio, f"{run['seconds']:.1f} s{_cpu(run)}",
                _processor_rss(run), _load(run),
            ])

    latency = results.get("latency")
    if latency and latency.get("included"):
        processor = runs["latency_processor"]
        producer_run = runs["latency_producer"]
        rows.append([
            "3", f"latency, producer at {latency['rate']:,.0f} events/s for "
            f"{latency['seconds']:.0f} s, fused engine, trigger 1 s: p50 / p95 / p99 (max)",
            f"{latency['p50_s']:.2f} / {latency['p95_s']:.2f} / {latency['p99_s']:.2f} s "
            f"({latency['max_s']:.2f} s)",
            f"{latency['included']:,} of {latency['events']:,} events",
            f"{producer_run['wall_s']:.0f} s",
            f"producer {_mb(producer_run['memory']['python_mb'])}; {_processor_rss(processor)}",
            f"{latency['load']:.1f}",
        ])

    sizes = results["sizes"]
    produced = [runs.get(f"produce_{rows_}") for rows_ in sizes]
    processed = [runs.get(f"fused_{rows_}") for rows_ in sizes]
    if all(produced) and all(processed):
        label = " / ".join(_rows(size) for size in sizes)
        rows.append([
            "4", f"producer peak RSS, `produce --max` of {label} rows",
            " / ".join(_mb(run["memory"]["python_mb"]) for run in produced), "", "", "", "",
        ])
        with_workers = [runs.get(f"produce_workers_{rows_}") for rows_ in sizes]
        if all(with_workers):
            rows.append([
                "4", f"producer peak RSS per worker (the largest process), `produce --max "
                f"--workers 2` of {label} rows",
                " / ".join(_mb(run["memory"]["python_mb"]) for run in with_workers),
                " / ".join(f"{run['events_per_s']:,.0f}/s" for run in with_workers), "", "", "",
            ])
        rows.append([
            "4", f"processor peak RSS (fused, all queries, 2 GB driver heap), {label} rows",
            " / ".join(f"{_mb(run['memory']['jvm_mb'])} + {_mb(run['memory']['python_mb'])}"
                       for run in processed), "JVM + Python", "", "", "",
        ])
    for size, produce, process in zip(sizes, produced, processed, strict=True):
        if not (produce and process):
            continue
        total = produce["wall_s"] + process["wall_s"]
        rows.append([
            "5", f"{_rows(size)} rows: `produce --max`, then `process --available-now` "
            "(fused, all queries), end to end",
            f"{total:.1f} s end to end",
            f"produce {_rate(produce['events_per_s'])}; process {_rate(process['events_per_s'])}",
            f"{produce['wall_s']:.1f} s + {process['wall_s']:.1f} s "
            f"(processing {process['seconds']:.1f} s){_cpu(process)}",
            f"producer {_mb(produce['memory']['python_mb'])}; {_processor_rss(process)}",
            f"{produce['load_before']:.1f} / {process['load_before']:.1f}",
        ])
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
        header, "",
        "| # | measurement | result | ratio | time | peak RSS | load |",
        "| --- | --- | ---: | --- | ---: | --- | ---: |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    profile = results.get("profile")
    if profile:
        derive = ", ".join(f"{name} {value:.2f}" for name, value in
                           profile["derive_each_s"].items())
        keys = (f"`json_object_keys` alone {profile['json_keys_s']:.1f}; "
                if "json_keys_s" in profile else "")
        lines += [
            "",
            f"Profile of the processor's stages (bench/profile_processor.py: a batch read of the "
            f"same {profile['events']:,} events, one Spark job per stage, seconds): Kafka read "
            f"{profile['read_s']:.1f}; `from_json` alone {profile['json_only_s']:.1f}; {keys}"
            f"`parse_events` with validation {profile['parse_first_s']:.1f} the first time "
            f"(code generation included), {profile['parse_s']:.1f} the second; + fine aggregates "
            f"{profile['fine_aggregates_s']:.1f}; + windowed_activity "
            f"{profile['windowed_s']:.1f}; + bad_records {profile['bad_records_s']:.1f}; "
            f"deriving and validating each query's rows from the "
            f"{profile['fine_aggregate_rows']} aggregate rows: {derive} "
            f"(total {profile['derive_total_s']:.1f}).",
        ]
    return "\n".join(lines) + "\n"


GOALS_START = "<!-- bench-goals:start -->"
GOALS_END = "<!-- bench-goals:end -->"
FULL_ROWS = 6_240_991


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**missed**")


def goals_table(results: dict[str, Any]) -> str:
    """The issue's goals beside this run's figures (a Markdown table)."""
    runs, main = results["runs"], results["main_size"]
    rows: list[tuple[str, str, bool | None]] = []
    per_query = runs.get(f"per_query_{main}")
    fused = runs.get(f"fused_section2_{main}") or runs.get(f"fused_{main}")
    if fused:
        rate = fused["events_per_s"]
        rows.append(("fused engine, all queries, 2 cores: >= 200,000 events/s",
                     f"{rate:,.0f} events/s ({_rows(fused['events'])} events)", rate >= 200_000))
    if fused and per_query:
        ratio = fused["events_per_s"] / per_query["events_per_s"]
        rows.append(("fused >= 5x the per-query engine, all queries",
                     f"{ratio:.1f}x ({fused['events_per_s']:,.0f} vs "
                     f"{per_query['events_per_s']:,.0f} events/s)", ratio >= 5))
    producer = results.get("producer")
    if producer:
        contenders = producer["contenders"]
        bare, one = contenders["bare"]["rows_per_s"], contenders["hhar-1"]["rows_per_s"]
        rows.append(("one producer process (`--max`) >= 0.5x the bare client loop",
                     f"{one / bare:.2f}x ({one:,.0f} vs {bare:,.0f} rows/s)", one / bare >= 0.5))
        if "hhar-2" in contenders:
            two = contenders["hhar-2"]["rows_per_s"]
            rows.append((f"`--workers 2` on {producer['cores']} cores >= 1.5x one worker",
                         f"{two / one:.2f}x ({two:,.0f} vs {one:,.0f} rows/s)", two / one >= 1.5))
        ratio = one / contenders["kcat"]["rows_per_s"]
        rows.append(("producer with validation >= 0.5x kcat", f"{ratio:.2f}x", ratio >= 0.5))
        rates = [one] + [runs[f"produce_{size}"]["events_per_s"] for size in results["sizes"]
                         if f"produce_{size}" in runs]
        rows.append(("producer never under 150,000 events/s",
                     f"{min(rates):,.0f} to {max(rates):,.0f} events/s", min(rates) >= 150_000))
    latency = results.get("latency")
    if latency and latency.get("included"):
        rows.append((f"latency at {latency['rate']:,.0f} events/s: p99 < 3 s",
                     f"p99 {latency['p99_s']:.2f} s (p50 {latency['p50_s']:.2f} s)",
                     latency["p99_s"] < 3))
    full_produce, full_process = runs.get(f"produce_{FULL_ROWS}"), runs.get(f"fused_{FULL_ROWS}")
    if full_produce and full_process:
        total = full_produce["wall_s"] + full_process["wall_s"]
        rows.append(("full 6,240,991 rows produced and processed end to end < 3 min",
                     f"{total / 60:.1f} min ({full_produce['wall_s']:.0f} s + "
                     f"{full_process['wall_s']:.0f} s)", total < 180))
    else:
        rows.append(("full 6,240,991 rows produced and processed end to end < 3 min",
                     "not in this run", None))
    for prefix, what in (("produce", "producer memory"),
                         ("produce_workers", "producer memory per worker (`--workers 2`)")):
        measured = [size for size in results["sizes"] if f"{prefix}_{size}" in runs]
        produced = [runs[f"{prefix}_{size}"]["memory"]["python_mb"] for size in measured]
        if produced:
            rows.append((f"{what} flat in the input size, < 200 MB",
                         " / ".join(f"{mb:,.0f}" for mb in produced) + " MB for "
                         + " / ".join(_rows(size) for size in measured) + " rows",
                         max(produced) < 200 and max(produced) - min(produced) < 50))
    processed = [runs[f"fused_{size}"] for size in results["sizes"] if f"fused_{size}" in runs]
    if processed:
        rows.append(("processor within a 2 GB driver heap",
                     "every run completed with -Xmx2g; JVM peak RSS "
                     + " / ".join(f"{run['memory']['jvm_mb']:,.0f}" for run in processed)
                     + " MB", True))
    lines = ["| goal | this run | verdict |", "| --- | --- | --- |"]
    lines += [f"| {goal} | {figure} | {_verdict(met)} |" for goal, figure, met in rows]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput, latency and scaling in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, main = results["runs"], results["main_size"]
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 5.2))

    bars: list[tuple[str, float, str]] = []
    producer = results.get("producer")
    if producer:
        for name, figures in producer["contenders"].items():
            label = {"kcat": "kcat -P", "bare": "bare client loop"}.get(
                name, f"hhar produce --max, {name.removeprefix('hhar-')} worker(s)")
            bars.append((label, figures["rows_per_s"],
                         "tab:blue" if name.startswith("hhar") else "tab:gray"))
        if producer.get("perf_events_per_s"):
            bars.append(("ProducerPerformance", producer["perf_events_per_s"], "tab:gray"))
    for name, label, color in (("baseline", "file stream (exercise)", "tab:gray"),
                               (f"per_query_{main}", "per-query engine", "tab:orange"),
                               (f"fused_section2_{main}" if f"fused_section2_{main}" in runs
                                else f"fused_{main}", "fused engine", "tab:green")):
        if name in runs and runs[name].get("events_per_s"):
            bars.append((label, runs[name]["events_per_s"], color))
    positions = range(len(bars))
    left.barh(list(positions), [value for _, value, _ in bars],
              color=[color for _, _, color in bars])
    left.set_yticks(list(positions), [label for label, _, _ in bars])
    left.invert_yaxis()
    left.set_xscale("log")
    left.set_xlabel("events/s (log scale)")
    left.set_title(f"Throughput, {_rows(main)} events")
    for index, (_, value, _) in enumerate(bars):
        left.text(value, index, f" {value:,.0f}", va="center", fontsize=8)

    latency = results.get("latency")
    if latency and latency.get("included"):
        edges = latency["histogram_edges_s"]
        middle.bar(edges[:-1], latency["histogram_s"], width=[b - a for a, b in
                                                              zip(edges, edges[1:], strict=False)],
                   align="edge", color="tab:blue", alpha=0.7)
        for name, style in (("p50_s", ":"), ("p95_s", "--"), ("p99_s", "-")):
            middle.axvline(latency[name], color="black", linestyle=style,
                           label=f"{name[:3]} {latency[name]:.2f} s")
        middle.legend()
        middle.set_xlabel("append to the events topic -> first total_count record with it (s)")
        middle.set_ylabel("events")
        middle.set_title(f"Latency at {latency['rate']:,.0f} events/s, trigger 1 s (fused)")

    sizes = [size for size in results["sizes"]
             if f"produce_{size}" in runs and f"fused_{size}" in runs]
    if sizes:
        produce = [runs[f"produce_{size}"]["wall_s"] for size in sizes]
        process = [runs[f"fused_{size}"]["wall_s"] for size in sizes]
        right.plot(sizes, [a + b for a, b in zip(produce, process, strict=True)], "o-",
                   label="end to end (s)", color="black")
        right.plot(sizes, produce, "o-", label="produce --max (s)", color="tab:blue")
        right.plot(sizes, process, "o-", label="process, fused (s)", color="tab:green")
        right.set_xscale("log")
        right.set_xlabel("rows")
        right.set_ylabel("seconds")
        memory = right.twinx()
        memory.plot(sizes, [runs[f"produce_{size}"]["memory"]["python_mb"] for size in sizes],
                    "s--", color="tab:blue", alpha=0.5, label="producer RSS (MB)")
        memory.plot(sizes, [runs[f"fused_{size}"]["memory"]["jvm_mb"] for size in sizes],
                    "s--", color="tab:green", alpha=0.5, label="processor JVM RSS (MB)")
        memory.set_ylabel("peak RSS (MB)")
        memory.set_ylim(bottom=0)
        handles = right.get_legend_handles_labels()
        extra = memory.get_legend_handles_labels()
        right.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=8, loc="upper left")
        right.set_title("Scaling: time and memory")
    m = results["machine"]
    figure.suptitle(f"hhar-stream benchmarks, {m['cores']} cores, {m['memory_gib']} GiB, "
                    f"load {results['load_at_start'][0]:.1f} at start "
                    f"({results['started_at']})", fontsize=10)
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


def render_outputs(results: dict[str, Any], out: Path, repo: Path, write_docs: bool) -> str:
    """Write the table, the plot and (with `write_docs`) BENCHMARKS.md; return the table."""
    table = render_table(results)
    (out / "table.md").write_text(table)
    plot(results, out / "benchmarks.png")
    if write_docs:
        update_docs(repo / "BENCHMARKS.md", table, goals_table(results))
        shutil.copyfile(out / "benchmarks.png", repo / PLOT)
    return table
