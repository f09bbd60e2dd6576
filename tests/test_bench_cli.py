"""`stanet-rt bench`: model and pipeline benchmarks on tiny configs write JSON / markdown / PNG with the
machine, skip GPU backends with a reason on a CPU machine, and measure every pipeline stage."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from stanet_rt.cli import app

runner = CliRunner()


def _load(out, stem):
    files = list(out.glob(f"{stem}.*.json"))
    assert len(files) == 1, files
    assert files[0].with_suffix(".md").exists() and files[0].with_suffix(".png").exists()
    return json.loads(files[0].read_text())


def test_bench_models_rows_parts_and_skips(tmp_path) -> None:
    res = runner.invoke(app, ["bench", "models", "--models", "tiny_lite", "--backends", "torch,ort-cpu,ort-cuda",
                              "--precisions", "fp32,fp16", "--batches", "1,2", "--iterations", "2",
                              "--out", str(tmp_path), "--name", "m"])
    assert res.exit_code == 0, res.output
    data = _load(tmp_path, "m")
    assert data["machine"]["cpu_cores"] >= 1 and data["machine"]["versions"]["torch"] == torch.__version__
    rows = data["rows"]
    timed = {(r["backend"], r["batch"], r["part"]) for r in rows if "p50_ms" in r}
    for backend in ("torch", "ort-cpu"):
        for batch in (1, 2):
            assert {(backend, batch, p) for p in ("audio", "encoder", "head", "frame (cached)",
                                                  "frame (uncached)")} <= timed
    for r in rows:
        if r.get("part") == "frame (cached)":
            assert r["throughput_fps"] == pytest.approx(1000 / r["p50_ms"], rel=0.01)
    uncached = {(r["backend"], r["batch"]): r["p50_ms"] for r in rows if r.get("part") == "frame (uncached)"}
    cached = {(r["backend"], r["batch"]): r["p50_ms"] for r in rows if r.get("part") == "frame (cached)"}
    assert all(uncached[k] > cached[k] for k in cached)  # the window of 3 re-encoded costs more
    skipped = {(r["backend"], r["precision"]): r["skipped"] for r in rows if r.get("skipped")}
    if not torch.cuda.is_available():
        assert skipped[("ort-cuda", "fp32")] == "no CUDA GPU"
        assert "GPU" in skipped[("torch", "fp16")]
    assert any("1.3x" in n for n in data["notes"])


def test_bench_models_fused_stanet_plus_is_the_sum(tmp_path, monkeypatch) -> None:
    from stanet_rt.benchmarks import bench_models as bm

    monkeypatch.setattr(bm, "fusion_ms", lambda size=356: 1.5)
    real_load = bm.load_model
    monkeypatch.setattr(bm, "load_model", lambda n: real_load({"sta": "tiny_sta", "sta_plus": "tiny_sta_plus"}[n]))
    result = bm.run(["stanet_plus"], ["torch"], [1], iterations=2)
    frame = {r["model"]: r["p50_ms"] for r in result.rows if r.get("part") == "frame (cached)"}
    assert frame["stanet_plus (sta + sta_plus)"] == pytest.approx(frame["sta"] + frame["sta_plus"] + 1.5, abs=2e-3)


def test_bench_pipeline_measures_every_stage(tmp_path) -> None:
    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.config import get_config
    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "lite.pt", build_model(get_config("tiny_lite")))
    res = runner.invoke(app, ["bench", "pipeline", "--models", str(ckpt), "--size", "160x96", "--seconds", "1",
                              "--batch", "2", "--backends", "torch,onnxruntime", "--out", str(tmp_path),
                              "--name", "p", "--outputs", "overlay,maps"])
    assert res.exit_code == 0, res.output
    rows = _load(tmp_path, "p")["rows"]
    assert {r["backend"] for r in rows} == {"torch", "onnxruntime"}  # the checkpoint was exported for ORT
    maps_only = {r["stage"] for r in rows if r["backend"] == "torch" and r["outputs"] == "maps"}
    assert "maps" in maps_only and "end to end" in maps_only and "overlay" not in maps_only
    stages = {r["stage"]: r for r in rows if r["backend"] == "torch" and r["outputs"] == "overlay+maps"}
    assert {"decode", "preprocess", "audio", "encoder", "head", "fusion", "overlay", "maps",
            "STFT alone (per frame)", "end to end"} <= set(stages)
    e2e = stages["end to end"]
    assert e2e["calls"] == 30 and e2e["fps"] > 0 and 0.0 <= e2e["overhead_share"] <= 1.0
    assert e2e["latency_p95_ms"] >= e2e["latency_p50_ms"] > 0
    assert stages["decode"]["calls"] == 30 and 15 <= stages["encoder"]["calls"] <= 30  # batches of up to 2


def test_bench_bad_options_are_one_line_errors(tmp_path) -> None:
    res = runner.invoke(app, ["bench", "models", "--backends", "cuda-magic", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown cuda-magic" in res.output
    res = runner.invoke(app, ["bench", "pipeline", "--size", "big", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "expected WxH" in res.output
    res = runner.invoke(app, ["bench", "pipeline", "--outputs", "overlay,video", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "expected overlay and/or maps" in res.output


def test_bench_pipeline_module_rejects_unknown_outputs(capsys) -> None:
    import stanet_rt.benchmarks.bench_pipeline as bp

    with pytest.raises(SystemExit) as exc:
        bp.main(["--outputs", "overlay,junk"])
    assert exc.value.code == 2 and "--outputs 'overlay,junk'" in capsys.readouterr().err


def test_bench_pipeline_live_records_counts_memory_and_latency(tmp_path) -> None:
    from stanet_rt.checkpoint import save_checkpoint
    from stanet_rt.config import get_config
    from stanet_rt.models.factory import build_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "lite.pt", build_model(get_config("tiny_lite")))
    res = runner.invoke(app, ["bench", "pipeline", "--live", "--models", str(ckpt), "--size", "96x64,128x96",
                              "--seconds", "2", "--fps", "15", "--out", str(tmp_path), "--note", "shared machine"])
    assert res.exit_code == 0, res.output
    data = _load(tmp_path, "pipeline_live")
    assert [r["input"] for r in data["rows"]] == ["96x64@15 + mic", "128x96@15 + mic"]
    for r in data["rows"]:
        assert r["frames_in"] == 30 and r["counts_add_up"] and r["frames_out"] + r["dropped"] == 30
        assert r["latency_p95_ms"] >= r["latency_p50_ms"] > 0 and r["rss_end_mb"] > 0
        assert r["latency_p95_beyond_lookahead_ms"] == pytest.approx(r["latency_p95_ms"] - r["lookahead_ms"], abs=0.2)
    assert "shared machine" in data["notes"]
