"""``export_model``: a student (checkpoint or registered config) -> ONNX graphs (+ FP16) with parity,
and TensorRT engines where TensorRT and a GPU exist. One entry point; one function per format.

Imports torch, onnx and ``stanet_rt``; the engines package is not needed to export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx
from stanet_rt.export.fp16 import to_fp16
from stanet_rt.export.onnx_export import DEFAULT_OPSET, export_part, save_atomic, set_metadata
from stanet_rt.export.parity import ParityResult, check_part, real_inputs

from stanet_rt.artifacts import META_SOURCE_SHA256, parse_onnx_name, part_path, sha256_of
from stanet_rt.errors import InputError
from stanet_rt.models.parts import part_specs
from stanet_rt.models.student_base import StudentModel


@dataclass
class ExportReport:
    files: list[Path] = field(default_factory=list)
    parity: list[ParityResult] = field(default_factory=list)
    engines: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.parity)


def load_student(model: str | Path | StudentModel | None) -> tuple[StudentModel, str]:
    """A StudentModel from any model argument of the resolver (``stanet_rt.resolve``: None / ``default``, a
    registered config name (random weights), a checkpoint) or a module."""
    if isinstance(model, StudentModel):
        return model.eval(), "module"
    from stanet_rt.resolve import load_torch_model

    net, ref = load_torch_model(model)
    if not isinstance(net, StudentModel):
        cfg = net.config
        what = f"config {cfg.name} ({cfg.arch})" if ref.kind == "config" else f"a {cfg.arch} checkpoint"
        raise InputError(f"{ref.given}: {what} is not a student; only STA / STA+ / stanet_lite export")
    return net, ref.describe()


def export_model(model: str | Path | StudentModel | None, out_dir: str | Path, fp16: bool = False,
                 opset: int = DEFAULT_OPSET, check_only: bool = False, tensorrt: bool = True,
                 name: str | None = None, progress: bool = True) -> ExportReport:
    """Export (or with ``check_only`` re-check) every graph of a student; parity runs after each export."""
    net, source = load_student(model)
    checkpoint = None
    if not isinstance(model, StudentModel):
        from stanet_rt.resolve import resolve_model

        ref = resolve_model(model)
        checkpoint = ref.target if ref.kind == "checkpoint" else None
    name = name or net.config.name
    out_dir = Path(out_dir)
    report = ExportReport(messages=[f"exporting {name} from {source}"])
    config_json = net.config.to_json()
    extra = {}
    if checkpoint is not None:  # lets engines.auto tell an export of this exact file from a stale one
        extra[META_SOURCE_SHA256] = sha256_of(checkpoint)
    specs = part_specs(net)
    precisions = ["fp32", "fp16"] if fp16 else ["fp32"]
    from stanet_rt.progress import Steps

    if check_only:  # every file first, so a missing one is the only line printed
        for spec in specs:
            for precision in precisions:
                path = part_path(out_dir, name, spec.part, precision)
                if not path.is_file():
                    raise InputError(f"{path}: not found (run without --check-only first)")
    # a bar on a terminal, a line per graph on a pipe (a piped export was silent for 40-50 s)
    with Steps("export", total=len(specs) * len(precisions), enabled=progress) as bar:
        for spec in specs:
            for precision in precisions:
                path = part_path(out_dir, name, spec.part, precision)
                bar.start(("parity of " if check_only else "") + path.name)
                if not check_only and precision == "fp32":
                    export_part(spec, path, config_json, opset, extra)
                elif not check_only:
                    fp32 = onnx.load(str(part_path(out_dir, name, spec.part, "fp32")))
                    half = to_fp16(fp32, spec.part)
                    set_metadata(half, config_json, spec.part, "fp16", extra)
                    save_atomic(half, path)
                report.files.append(path)
                for label, inputs in (("random", spec.example), ("real", real_inputs(spec, net))):
                    report.parity += check_part(spec, str(path), precision, inputs, label)
                bar.advance()
    if tensorrt and not check_only:
        report.engines, msg = build_engines(report.files, out_dir, name, specs)
        report.messages.append(msg)
    return report


def build_engines(files: list[Path], out_dir: Path, name: str, specs: list) -> tuple[list[Path], str]:
    """Build a TensorRT engine for every exported graph, or say why not (the ONNX files stay)."""
    from stanet_rt.export.tensorrt_build import TensorRTUnavailable, build_engine, trt_environment

    try:
        trt_environment()
    except TensorRTUnavailable as exc:
        return [], f"TensorRT engines skipped: {exc}; the ONNX files were written"
    shapes = {s.part: dict(zip(s.input_names, [tuple(x.shape) for x in s.example], strict=True)) for s in specs}
    engines = []
    cache = out_dir / "timing.cache"
    for path in files:
        parsed = parse_onnx_name(path)
        engines.append(build_engine(path, out_dir, name, parsed.part, parsed.precision, shapes[parsed.part],
                                    timing_cache=cache).engine)
    return engines, f"built {len(engines)} TensorRT engines"
