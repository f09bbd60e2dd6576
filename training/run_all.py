"""``stanet-rt train``: set up a run (data, preset, output folder, DDP) and run one stage or all of them.

* :func:`prepare_data`: the data root. With ``--data`` it is that AVE-layout folder (the real AVE or a
  synthetic set); without it a synthetic preset generates its set into ``<out>/synth`` (reused when
  it exists with the same settings).
* :func:`make_context`: the :class:`~training.stages.common.StageContext` of a run.
* :func:`run_stage`: one stage by name; :func:`run_all`: every stage in order (``train all``), each
  skipped when its outputs exist and are complete and resumed from its last checkpoint otherwise, then
  the report for synthetic data. Wall times per stage go to ``<out>/timings.json``.

Imports ``training.{presets,stages,ddp}`` and (lazily) the synthetic generator and report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stanet_rt.training.ddp import barrier, init_distributed
from stanet_rt.training.engine import is_complete
from stanet_rt.training.presets import Preset, SynthSpec, get_preset
from stanet_rt.training.stages import STAGES, stage_function
from stanet_rt.training.stages.common import StageContext

from stanet_rt.errors import InputError
from stanet_rt.fileio import write_text

STAGE_ORDER = tuple(STAGES)
COMMANDS = (*STAGE_ORDER, "all", "report")
TIMINGS = "timings.json"


def _synth_spec_settings(spec: SynthSpec) -> dict[str, Any]:
    return {"videos": spec.videos, "preset": spec.preset, "seed": spec.seed, **spec.overrides}


def generate_once(spec: SynthSpec, root: Path, progress: bool, log: Callable[[str], None]) -> Path:
    """The synthetic set of ``spec`` in ``root``, generated unless it is there with the same settings."""
    wanted = _synth_spec_settings(spec)
    stamp = root / "train_synth_settings.json"
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == wanted:
        return root
    from stanet_rt.training.data.synth import generate_synth

    log(f"generating the synthetic set ({spec.videos} videos, {spec.preset}) into {root}")
    generate_synth(
        root, spec.videos, seed=spec.seed, preset=spec.preset, overwrite=True, progress=progress, **spec.overrides
    )
    write_text(stamp, json.dumps(wanted, sort_keys=True) + "\n")
    return root


def prepare_data(
    preset: Preset, data: Path | None, out: Path, progress: bool = True, log: Callable[[str], None] = print
) -> Path:
    """The AVE-layout data root of a run (generating the preset's synthetic set when ``data`` is None)."""
    if data is not None:
        data = Path(data)
        if not (data / "Annotations.txt").is_file():
            raise InputError(f"{data}: not an AVE-layout data folder (no Annotations.txt)")
        return data
    if preset.synth is None:
        raise InputError(f"preset {preset.name!r} needs --data (the AVE data set folder)")
    return generate_once(preset.synth, out / "synth", progress, log)


def make_context(
    preset_name: str,
    out: Path,
    data: Path | None = None,
    resume: bool = False,
    epochs: int | None = None,
    progress: bool = True,
    device: str | None = None,
    threads: int | None = 1,
    log: Callable[[str], None] = print,
) -> StageContext:
    """A run's context: preset (``epochs`` overrides every trainer), data (generated on rank 0 when
    needed), output folder, DDP position (torchrun environment or a single process).

    ``threads``: torch intra-op threads per process (None: leave torch's default). One is the default:
    on a small shared CPU, OpenMP threads spin-waiting for a busy core made a training step several
    times slower than one thread (measured on the 2-core build machine); use torchrun for more cores."""
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))
    preset = get_preset(preset_name)
    if epochs is not None:
        if epochs < 1:
            raise InputError(f"--epochs must be >= 1, got {epochs}")
        preset = preset.with_epochs(epochs)
    info = init_distributed(device)
    out = Path(out)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        timer = _Timer()
        stamp = out / "synth" / "train_synth_settings.json"
        fresh = data is None and not stamp.is_file()
        root = prepare_data(preset, data, out, progress, log)
        if fresh:
            _record_time(out, "synth data", *timer.stop())
    barrier(info)
    if not info.is_main:
        root = prepare_data(preset, data, out, False, lambda _m: None)
    return StageContext(preset, root, out, resume=resume, progress=progress, info=info, log_fn=log)


def _record_time(out: Path, stage: str, wall: float, cpu: float) -> None:
    """Add a stage's wall and process-CPU seconds to ``<out>/timings.json`` (summed over resumed runs).
    CPU seconds are this process's, so they show the work even when other jobs share the machine."""
    path = out / TIMINGS
    times = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for key, value in (("wall_s", wall), ("cpu_s", cpu)):
        table = times.setdefault(key, {})
        table[stage] = round(table.get(stage, 0.0) + value, 2)
        table["total"] = round(sum(v for k, v in table.items() if k != "total"), 2)
    write_text(path, json.dumps(times, indent=1) + "\n")


class _Timer:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_stage(ctx: StageContext, stage: str) -> float:
    """Run one stage; returns its wall time in seconds (also added to ``<out>/timings.json``)."""
    if stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}; known: {', '.join(COMMANDS)}")
    timer = _Timer()
    ctx.log(f"== {stage} ({ctx.preset.name}, data {ctx.data}, out {ctx.out})")
    stage_function(stage)(ctx)
    seconds, cpu = timer.stop()
    if ctx.info.is_main:
        _record_time(ctx.out, stage, seconds, cpu)
    ctx.log(f"== {stage} done in {seconds:.1f} s (process CPU {cpu:.1f} s)")
    return seconds


def run_all(ctx: StageContext, report: bool = True, results_dir: Path | None = None) -> dict[str, float]:
    """Every stage in order, skipping finished ones and resuming unfinished ones; then the report (it scores
    the test videos that have synthetic ground truth and skips the rest, so real data in the AVE layout
    trains to the end; copies go to ``results_dir`` when given). Returns the wall time of each stage."""
    ctx.resume = True
    times = {stage: run_stage(ctx, stage) for stage in STAGE_ORDER}
    if report and is_synthetic_set(ctx.data):
        times["report"] = run_report(ctx, results_dir)
        if ctx.preset.unseen is not None and ctx.info.is_main:
            timer = _Timer()
            run_unseen(ctx, results_dir)
            times["report unseen"], cpu = timer.stop()
            _record_time(ctx.out, "report unseen", times["report unseen"], cpu)
    elif report:
        ctx.log(f"report: skipped ({ctx.data} is not a `stanet-rt synth` set: no ground truth it can score)")
    return times


UNSEEN = "unseen"
TRAINED = ("scam-coarse", "scam-fine", "scam-plus", "switch", "students", "distill")


def run_unseen(ctx: StageContext, results_dir: Path | None = None) -> dict[str, Any]:
    """Issue 15: score the run's trained models on ``ctx.preset.unseen``, a generator configuration
    training never saw. Its set goes to ``<out>/unseen/synth``; the trained stages' checkpoints are copied
    into ``<out>/unseen`` (the distillation's teacher maps left out), so that every stage there finds its
    model complete and only makes the unseen set's CAMs and pseudo-GT (nothing is trained on it); then
    the report ``<name>_unseen`` (teachers' accuracy from the training run's logs)."""
    import shutil

    from stanet_rt.training.report import report_name, write_report

    spec = ctx.preset.unseen
    if spec is None:
        raise InputError(f"preset {ctx.preset.name!r} has no unseen configuration")
    unfinished = [f"{stage}/{name}" for stage, name in trained_runs(ctx.preset)
                  if not is_complete(ctx.run_dir(stage, name))]
    if unfinished:  # else a stage would train on the unseen set
        raise InputError(f"{ctx.out}: {', '.join(unfinished)} not trained to the end; run `train all` first")
    root = ctx.out / UNSEEN
    data = generate_once(spec, root / "synth", ctx.progress, ctx.log)
    for stage in TRAINED:
        if (ctx.out / stage).is_dir():
            shutil.copytree(ctx.out / stage, root / stage, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("teacher_maps"))
    sub = StageContext(ctx.preset, data, root, resume=True, progress=ctx.progress, info=ctx.info, log_fn=ctx.log)
    for stage in STAGE_ORDER:
        run_stage(sub, stage)
    title = (f"the `{spec.preset}` configuration ({spec.videos} videos, seed {spec.seed}), which training never "
             "saw; the teachers made its pseudo-GT, nothing was trained on it")
    return write_report(sub, results_dir, name=f"{report_name(ctx)}_{UNSEEN}", teachers_from=ctx.out, title=title)


def trained_runs(preset: Preset) -> list[tuple[str, str]]:
    """(stage, run name) of every trainer of ``preset``, in stage order."""
    runs = [("scam-coarse", b) for b in preset.coarse] + [("scam-fine", b) for b in preset.fine]
    runs += [("scam-plus", n) for n in preset.plus] + [("switch", "audio_switch")]
    runs += [("students", s) for s in preset.students]
    return runs + ([("distill", "lite")] if preset.distill is not None else [])


def is_synthetic_set(data: Path) -> bool:
    """True when ``data`` was written by ``stanet-rt synth`` (its settings file and ``gt/``): only such a
    set has the ground truth the report scores (an AVE-layout folder may have a ``gt/`` of another format)."""
    from stanet_rt.training.data.synth import SETTINGS

    return (Path(data) / SETTINGS).is_file() and (Path(data) / "gt").is_dir()


DEFAULT_FILES = {"sta": "default.pt", "sta_plus": "default_plus.pt"}
MAX_DEFAULT_MB = 5.0


def default_sources(ctx: StageContext) -> dict[str, Path]:
    """Which of the run's model files become which default: the distilled light student alone when it
    exists (issue 8: it replaces the light STA and makes the fusion unnecessary, so ``run`` stays live
    on a CPU), else the students STA (+ STA+, fused by the runtime).

    Unless the run's own report (its held-out test split of the *training* configuration, never the
    unseen set) scores the distilled student below the light STA it started from on CC: then that STA
    alone is the default (same architecture and cost; issue 15: distilling from the fused maps can lose
    to the student itself)."""
    from stanet_rt.training.report import LITE, NAMES
    from stanet_rt.training.stages.distill import distilled_file
    from stanet_rt.training.stages.students import student_file

    sta_name = NAMES["sta"]
    sta = student_file(ctx, "sta")
    if distilled_file(ctx).is_file():
        scores = _report_cc(ctx)
        if sta.is_file() and scores.get(sta_name, -1.0) > scores.get(LITE, 2.0):
            ctx.log(f"default: {sta} (report CC {scores[sta_name]:.3f}) rather than the distilled student "
                    f"({scores[LITE]:.3f})")
            return {"default.pt": sta}
        return {"default.pt": distilled_file(ctx)}
    return {target: student_file(ctx, name) for name, target in DEFAULT_FILES.items()
            if student_file(ctx, name).is_file()}


def _report_cc(ctx: StageContext) -> dict[str, float]:
    """CC per method on all test frames from the run's report JSON (empty without a report)."""
    import json

    from stanet_rt.training.report import report_name

    path = ctx.out / "report" / f"{report_name(ctx)}.json"
    if not path.is_file():
        return {}
    scores = json.loads(path.read_text()).get("scores", {}).get("all", {})
    return {name: float(row["CC"]) for name, row in scores.items() if isinstance(row, dict) and "CC" in row}


def install_defaults(ctx: StageContext, assets: Path | None = None) -> list[Path]:
    """Copy the run's model files into ``assets`` as the runtime's default models (see
    :func:`default_sources`), each only if it is at most ``MAX_DEFAULT_MB``; a default the run does not
    replace is removed (the runtime fuses every default it finds). ``assets`` None: the user's models folder
    (``stanet_rt.models.default.user_models_dir``), which the runtime's ``default`` prefers over the shipped
    models; never the installed package. Returns the files written. Their ONNX export (which training
    does not import) is the CLI's: ``stanet_rt.cli.install.install_default_models``."""
    import shutil

    from stanet_rt.fileio import atomic_path
    from stanet_rt.models.default import user_models_dir

    assets = Path(assets) if assets is not None else user_models_dir()
    written = []
    sources = default_sources(ctx)
    for target, src in sources.items():
        size_mb = src.stat().st_size / 1e6
        if size_mb > MAX_DEFAULT_MB:
            ctx.log(f"not installing {src} as {target}: {size_mb:.1f} MB > {MAX_DEFAULT_MB} MB")
            continue
        with atomic_path(assets / target) as tmp:
            shutil.copyfile(src, tmp)
        written.append(assets / target)
        ctx.log(f"installed {src} as {assets / target} ({size_mb:.2f} MB)")
    if not written:
        raise InputError(
            f"{ctx.out / 'students'}: no student model to install (run `stanet-rt train students`)"
        )
    for target in DEFAULT_FILES.values():
        stale = [assets / target, *assets.glob(f"{Path(target).stem}.*.onnx")]
        for path in stale:
            if path.is_file() and (target not in sources or path.suffix == ".onnx"):
                path.unlink()
    return written


def run_report(ctx: StageContext, results_dir: Path | None = None) -> float:
    """The evaluation of ``training.report`` (rank 0 only); returns its wall time."""
    timer = _Timer()
    if ctx.info.is_main:
        from stanet_rt.training.report import write_report

        write_report(ctx, results_dir=results_dir)
    barrier(ctx.info)
    seconds, cpu = timer.stop()
    if ctx.info.is_main:
        _record_time(ctx.out, "report", seconds, cpu)
    return seconds
