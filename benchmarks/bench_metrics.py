"""Throughput of the evaluation metrics: frames per second at 640 x 360, every metric, post-processing
and the bicubic resize included (a prediction at 356 x 356 scored against a 640 x 360 ground truth).

Run: ``python -m stanet_rt.benchmarks.bench_metrics [--frames N] [--width W --height H]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from stanet_rt.benchmarks.common import BenchmarkResult, time_callable

from stanet_rt.eval import metrics as M
from stanet_rt.eval.evaluate import score_frame
from stanet_rt.eval.postprocess import imresize, postprocess_map
from stanet_rt.progress import step_line


def run(width: int = 640, height: int = 360, pred_size: int = 356, iterations: int = 10) -> BenchmarkResult:
    rng = np.random.default_rng(0)
    pred = rng.random((pred_size, pred_size))
    gt = rng.random((height, width))
    fix = rng.random((height, width)) > 0.999
    other = rng.random((height, width)) > 0.995
    sal = imresize(postprocess_map(pred), (height, width))
    cases = {
        "postprocess": lambda: postprocess_map(pred),
        "imresize": lambda: imresize(pred, (height, width)),
        "CC": lambda: M.cc(sal, gt),
        "NSS": lambda: M.nss(sal, fix),
        "AUC_J": lambda: M.auc_judd(sal, fix, rng),
        "sAUC (100 splits)": lambda: M.auc_shuffled(sal, fix, other, rng),
        "SIM": lambda: M.similarity(sal, gt),
        "KLD": lambda: M.kld(sal, gt),
        "all metrics, one frame": lambda: score_frame(pred, gt, fix, other, rng),
    }
    result = BenchmarkResult("metrics")
    result.notes.append(f"ground truth {width}x{height}, prediction {pred_size}x{pred_size}, numpy float64")
    for name, fn in cases.items():
        step_line("bench metrics", name)
        t = time_callable(fn, warmup=1, iterations=iterations)
        result.add(stage=name, resolution=f"{width}x{height}", **t.summary())
    return result


def report(width: int = 640, height: int = 360, iterations: int = 10, out: Path | None = None) -> BenchmarkResult:
    """:func:`run`, then the result files into ``out`` (default: the results folder) and the table printed."""
    result = run(width, height, iterations=iterations)
    paths = result.write(out) if out else result.write()
    print(result.markdown(["stage", "resolution", "p50_ms", "p95_ms", "throughput_fps"]))
    print(f"wrote {paths['json']} and {paths['md']}")
    return result


def main(argv: list[str] | None = None) -> BenchmarkResult:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    return report(args.width, args.height, args.iterations, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
