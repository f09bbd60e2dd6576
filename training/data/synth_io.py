"""Writing one synthetic clip to disk: the mp4 (video + audio), its ground truth (h5 and the STAViS
layout). Every file or per-video folder is written to a temp name and renamed, so an interrupted run
never leaves a half-written output.

* :func:`write_mp4`: H.264 (libx264, CRF 18, single-threaded, macroblock tree off: the bytes do not depend on
  scheduling) or MPEG-4 part 2 when FFmpeg lacks libx264; AAC mono audio (or Opus / MP3 when the AAC
  encoder is missing) at the clip's sample rate.
* :func:`write_gt_h5`: ``density`` (T, H, W) float32, each frame max 1; ``fixations`` (T, H, W) uint8
  binary.
* :func:`write_stavis_video`: ``video_frames/<DB>/<v>/img_%05d.jpg``, ``video_audio/<DB>/<v>/<v>.wav``,
  ``annotations/<DB>/<v>/fixMap_%05d.mat`` (``eyeMap``, uint8 binary) and ``maps/eyeMap_%05d.jpg``
  (density x 255), frames 1-based as in STAViS.

Imports numpy, av, h5py, scipy, pillow and ``stanet_rt.fileio``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from stanet_rt.fileio import atomic_dir, atomic_path

AUDIO_CODECS = ("aac", "libopus", "libmp3lame")


def video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def audio_codec() -> str:
    import av

    for name in AUDIO_CODECS:
        if name in av.codecs_available:
            return name
    raise RuntimeError(f"FFmpeg in PyAV has none of the audio encoders {', '.join(AUDIO_CODECS)}")


def write_mp4(path: Path, frames: np.ndarray, fps: int, audio: np.ndarray, rate: int) -> Path:
    """``frames`` (T, H, W, 3) uint8 at ``fps`` and ``audio`` (n,) float32 mono in [-1, 1] at ``rate``
    Hz -> an mp4 at ``path`` (atomically)."""
    import av

    vcodec, acodec = video_codec(), audio_codec()
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.codec_context.thread_count = 1
        if vcodec == "libx264":
            # mbtree off: with it on, x264's SIMD macroblock-tree pass gave different bytes for the same
            # frames from run to run (seen with PyAV 18 / FFmpeg 8 here), breaking "deterministic by seed".
            vs.options = {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}
        else:
            vs.bit_rate = 2_000_000
        audio_rate = 48000 if acodec == "libopus" else rate  # Opus only runs at 48 kHz
        ast = out.add_stream(acodec, rate=audio_rate, layout="mono")
        for img in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        _encode_audio(out, ast, np.clip(audio, -1.0, 1.0).astype(np.float32), rate)
    return path


def _encode_audio(out, stream, audio: np.ndarray, rate: int) -> None:
    """Feed (n,) float32 mono at ``rate`` Hz to an audio stream; PyAV's encoder resamples to the codec's
    sample format / rate and re-chunks to its frame size."""
    import av

    chunk = 1024
    for start in range(0, len(audio), chunk):
        frame = av.AudioFrame.from_ndarray(audio[None, start : start + chunk], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    """(n,) float in [-1, 1] -> 16-bit PCM mono wav, atomically."""
    from scipy.io import wavfile

    with atomic_path(path) as tmp:
        wavfile.write(tmp, rate, np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16))
    return path


def write_gt_h5(path: Path, density: np.ndarray, fixations: np.ndarray, attrs: dict) -> Path:
    """The evaluation-only ground truth of one clip (module docstring), atomically."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as fh:
        kw = dict(compression="gzip", compression_opts=1, shuffle=True, chunks=(1, *density.shape[1:]))
        fh.create_dataset("density", data=density.astype(np.float32), **kw)
        fh.create_dataset("fixations", data=fixations.astype(np.uint8), **kw)
        for key, value in attrs.items():
            fh.attrs[key] = value
    return path


def write_stavis_video(
    root: Path,
    dataset: str,
    video: str,
    frames: np.ndarray,
    audio: np.ndarray,
    rate: int,
    density: np.ndarray,
    fixations: np.ndarray,
) -> None:
    """One clip in the STAViS layout under ``root`` (module docstring); each folder atomically."""
    from PIL import Image
    from scipy.io import savemat

    with atomic_dir(root / "video_frames" / dataset / video) as tmp:
        for i, img in enumerate(frames, 1):
            Image.fromarray(img).save(tmp / f"img_{i:05d}.jpg", quality=95)
    with atomic_dir(root / "video_audio" / dataset / video) as tmp:
        write_wav(tmp / f"{video}.wav", audio, rate)
    with atomic_dir(root / "annotations" / dataset / video) as tmp:
        (tmp / "maps").mkdir()
        for i, (dens, fix) in enumerate(zip(density, fixations, strict=True), 1):
            savemat(tmp / f"fixMap_{i:05d}.mat", {"eyeMap": fix.astype(np.uint8)}, do_compression=True)
            grey = np.round(np.clip(dens, 0, 1) * 255).astype(np.uint8)
            Image.fromarray(grey).save(tmp / "maps" / f"eyeMap_{i:05d}.jpg", quality=95)
