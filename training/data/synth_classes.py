"""The classes of the synthetic audio-visual event set: each is a visual object (shape + colour) with
its own sound (harmonic tone, noise bursts, chirps, square buzz).

Class k of the generation order gets shape ``SHAPES[k % 7]``, colour ``COLOURS[k % 8]`` (so every
(shape, colour) pair is distinct up to 56 classes) and sound ``SOUNDS[k % 4]`` with a pitch factor
that grows every 4 classes, so the sounds of any two classes differ. The table is returned sorted by
name, so a class's position in it is its :class:`~training.data.records.ClassIndex` index.

Imports the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross", "halfdisc")
COLOURS = (
    ("red", (225, 45, 45)),
    ("green", (40, 190, 70)),
    ("blue", (50, 95, 235)),
    ("yellow", (235, 205, 35)),
    ("magenta", (215, 60, 200)),
    ("cyan", (40, 200, 210)),
    ("orange", (245, 140, 30)),
    ("purple", (130, 70, 200)),
)
SOUNDS = ("tone", "noise", "chirp", "buzz")
MAX_CLASSES = 28  # as many as AVE


@dataclass(frozen=True)
class SynthClass:
    """A class: ``name`` ("<colour> <shape> <sound>"), its ``shape``, ``colour`` (RGB 0-255), ``sound``
    and ``pitch`` (frequency factor of the sound, 1 for the first four classes)."""

    name: str
    shape: str
    colour: tuple[int, int, int]
    sound: str
    pitch: float


def class_table(n_classes: int) -> list[SynthClass]:
    """The first ``n_classes`` classes, sorted by name (1 <= n_classes <= 28)."""
    if not 1 <= n_classes <= MAX_CLASSES:
        raise ValueError(f"the synthetic set has 1 to {MAX_CLASSES} classes, got {n_classes}")
    table = []
    for k in range(n_classes):
        colour_name, rgb = COLOURS[k % len(COLOURS)]
        shape, sound = SHAPES[k % len(SHAPES)], SOUNDS[k % len(SOUNDS)]
        pitch = 1.0 + 0.45 * (k // len(SOUNDS))
        table.append(SynthClass(f"{colour_name} {shape} {sound}", shape, rgb, sound, pitch))
    return sorted(table, key=lambda c: c.name)
