"""Benchmark plumbing shared by every benchmark: machine description, timing, result files.

A result file records what was measured (rows), on what (CPU model and cores, GPU name and driver,
library versions) and how (the command line), as JSON, a markdown table and optionally a PNG plot.
Nothing here asserts speed: targets are reported, never enforced.

Imports only the standard library, numpy and (lazily) torch / onnxruntime / matplotlib.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_description() -> dict[str, Any]:
    from stanet_rt.devices import driver_version, gpus

    found = gpus()
    if not found:
        return {"name": None, "driver": None, "compute_capability": None, "count": 0}
    return {"name": found[0].name, "driver": driver_version(), "compute_capability": found[0].compute_capability,
            "count": len(found)}


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "unknown"))
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    """Describe this machine and the library versions that benchmarks depend on."""
    torch_cuda = None
    try:
        import torch

        torch_cuda = torch.version.cuda
    except Exception:
        pass
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpu": _gpu_description(),
        "versions": {
            "torch": _version("torch"),
            "torch_cuda": torch_cuda,
            "onnxruntime": _version("onnxruntime"),
            "onnx": _version("onnx"),
            "tensorrt": _version("tensorrt"),
            "av": _version("av"),
            "numpy": np.__version__,
        },
    }


def machine_tag(info: dict[str, Any] | None = None) -> str:
    """A short file-name-safe tag: the GPU name if there is one, else the CPU model and core count."""
    info = info or machine_info()
    gpu = info["gpu"]["name"]
    raw = gpu if gpu else f"{info['cpu']}-{info['cpu_cores']}c"
    raw = re.sub(r"\((R|TM)\)|CPU|Processor|@.*", "", raw, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9]+", "-", raw).strip("-").lower()


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Latency samples of one benchmark case, in milliseconds per call."""

    samples_ms: list[float]
    items_per_call: int = 1

    @property
    def p50(self) -> float:
        return float(np.percentile(self.samples_ms, 50))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples_ms, 95))

    @property
    def p99(self) -> float:
        return float(np.percentile(self.samples_ms, 99))

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples_ms))

    @property
    def throughput(self) -> float:
        """Items (frames) per second at the median latency."""
        return 1000.0 * self.items_per_call / self.p50 if self.p50 > 0 else float("inf")

    def summary(self) -> dict[str, float]:
        return {
            "p50_ms": round(self.p50, 3),
            "p95_ms": round(self.p95, 3),
            "p99_ms": round(self.p99, 3),
            "mean_ms": round(self.mean, 3),
            "throughput_fps": round(self.throughput, 2),
            "iterations": len(self.samples_ms),
        }


def time_callable(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    iterations: int = 20,
    min_seconds: float = 0.0,
    items_per_call: int = 1,
    cuda_sync: bool = False,
) -> Timing:
    """Time ``fn`` after ``warmup`` calls: at least ``iterations`` calls and ``min_seconds`` of runtime.

    With ``cuda_sync`` each call is timed with CUDA events on the current stream (GPU time of the
    enqueued work plus launch overhead), otherwise with ``time.perf_counter``.
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    if cuda_sync:
        import torch

        torch.cuda.synchronize()
        while len(samples) < iterations or time.perf_counter() - start < min_seconds:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(begin.elapsed_time(end))
    else:
        while len(samples) < iterations or time.perf_counter() - start < min_seconds:
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000.0)
    return Timing(samples, items_per_call)


# ---------------------------------------------------------------------------------------------
# Result files
# ---------------------------------------------------------------------------------------------


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (py3.10)


@dataclass
class BenchmarkResult:
    """Rows of one benchmark run plus where and how it was measured."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)
    command: str = field(default_factory=lambda: " ".join(shlex.quote(a) for a in sys.argv))
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: _now_iso())

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "command": self.command,
            "machine": self.machine,
            "notes": self.notes,
            "rows": self.rows,
        }

    def markdown(self, columns: Sequence[str] | None = None) -> str:
        """A markdown table of the rows preceded by the machine line."""
        return markdown_table(self.rows, columns, header=self.header_line())

    def header_line(self) -> str:
        m = self.machine
        gpu = m["gpu"]["name"] or "no GPU"
        v = m["versions"]
        return (
            f"**{self.name}** on {m['cpu']} ({m['cpu_cores']} cores), {gpu}; "
            f"torch {v['torch']}, onnxruntime {v['onnxruntime']}, TensorRT {v['tensorrt'] or 'n/a'}; "
            f"`{self.command}` ({self.created})"
        )

    def write(
        self, out_dir: str | Path = RESULTS_DIR, columns: Sequence[str] | None = None
    ) -> dict[str, Path]:
        """Write ``<name>.<machine>.json`` and ``.md``; returns the paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.name}.{machine_tag(self.machine)}"
        paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        md = self.markdown(columns)
        if self.notes:
            md += "\n" + "\n".join(f"- {n}" for n in self.notes) + "\n"
        paths["md"].write_text(md, encoding="utf-8")
        return paths


def markdown_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, header: str = ""
) -> str:
    """Render dict rows as a GitHub markdown table (columns default to the union of keys in order)."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        columns = list(seen)

    def fmt(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
        return str(value)

    lines = [header, ""] if header else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def bar_plot(
    rows: Sequence[dict[str, Any]],
    label_keys: Sequence[str],
    value_key: str,
    path: str | Path,
    title: str,
    xlabel: str,
) -> Path:
    """Horizontal bar chart of ``value_key`` per row, labelled by ``label_keys``; written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [" / ".join(str(r.get(k)) for k in label_keys) for r in rows]
    values = [float(r.get(value_key) or 0.0) for r in rows]
    height = max(2.0, 0.35 * len(rows) + 1.0)
    fig, ax = plt.subplots(figsize=(9, height))
    ax.barh(range(len(values)), values, color="#3a7dc9")
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.3g}", va="center", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
