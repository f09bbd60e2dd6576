"""Progress of long commands (export, bench): a rich bar on a terminal, one plain line per step on stderr
when stderr is a pipe or a file (a bar draws nothing there, and a piped ``export`` was silent for 40-50 s).

Imports only the standard library and (lazily, on a terminal) rich.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO


def step_line(title: str, text: str, stream: TextIO | None = None) -> None:
    """Print ``<title>: <text>`` on one line to ``stream`` (stderr) and flush it at once."""
    stream = stream or sys.stderr
    print(f"{title}: {text}", file=stream, flush=True)


class Steps:
    """``with Steps("export", total=6) as steps: steps.start("encoder fp32"); ...; steps.advance()``.

    On a terminal a transient rich bar shows the current step; elsewhere each :meth:`start` prints
    ``export [i/total]: encoder fp32``. ``enabled=False`` shows nothing."""

    def __init__(self, title: str, total: int | None = None, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.title, self.total, self.enabled = title, total, enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Steps:
        if self.enabled and self.stream.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total)
        return self

    def start(self, description: str) -> None:
        """Step ``done + 1`` begins: ``description`` names it."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, description=description)
        else:
            count = f"{self.done + 1}/{self.total}" if self.total else str(self.done + 1)
            step_line(f"{self.title} [{count}]", description, self.stream)

    def advance(self) -> None:
        """The current step is finished."""
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
