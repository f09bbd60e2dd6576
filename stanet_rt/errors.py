"""Exceptions shared by the whole project (imports nothing)."""

from __future__ import annotations


class StanetError(Exception):
    """Base class of the errors stanet-rt raises on bad input; the CLI prints them as one line."""


class InputError(StanetError):
    """A user-supplied file or argument is missing, unreadable or malformed.

    The message names the file and the problem, e.g. ``clip.mp4: no audio track``.
    """


class WeightsError(StanetError):
    """A weight file is missing, unreadable, or its keys/shapes do not match the model."""
