"""stanet_rt.benchmarks.common: timing statistics, machine description and result files."""

from __future__ import annotations

import json
import time

from stanet_rt.benchmarks.common import (
    BenchmarkResult,
    Timing,
    machine_info,
    machine_tag,
    markdown_table,
    time_callable,
)


def test_timing_percentiles_and_throughput() -> None:
    t = Timing([10.0] * 50 + [20.0] * 49 + [100.0], items_per_call=8)
    assert t.p50 == 15.0
    assert t.p99 > 20.0
    assert abs(t.throughput - 8 * 1000 / 15.0) < 1e-9


def test_time_callable_measures_sleep() -> None:
    timing = time_callable(lambda: time.sleep(0.005), warmup=1, iterations=5)
    assert len(timing.samples_ms) == 5
    assert all(s >= 4.5 for s in timing.samples_ms)


def test_machine_info_and_tag() -> None:
    info = machine_info()
    assert info["cpu_cores"] >= 1
    assert info["versions"]["numpy"]
    tag = machine_tag(info)
    assert tag and all(c.isalnum() or c == "-" for c in tag)


def test_result_files(tmp_path) -> None:
    res = BenchmarkResult("unit")
    res.add(model="a", backend="torch", p50_ms=1.5)
    res.add(model="b", backend="ort", p50_ms=0.75, extra=None)
    paths = res.write(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["rows"][1]["backend"] == "ort"
    assert data["machine"]["cpu_cores"] >= 1
    md = paths["md"].read_text()
    assert "| model | backend | p50_ms | extra |" in md
    assert "| b | ort | 0.75 | - |" in md


def test_markdown_table_columns() -> None:
    md = markdown_table([{"x": 1, "y": 2.0}], columns=["y"])
    assert "| y |" in md and "| 2 |" in md


def test_metric_benchmark_runs_and_writes(tmp_path) -> None:
    from stanet_rt.benchmarks.bench_metrics import run

    result = run(64, 36, pred_size=32, iterations=2)
    stages = [r["stage"] for r in result.rows]
    assert "all metrics, one frame" in stages and all(r["p50_ms"] > 0 for r in result.rows)
    paths = result.write(tmp_path)
    assert paths["md"].read_text().count("|") > 10
