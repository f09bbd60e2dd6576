"""The one progress display (rich, on stderr; stdout stays clean for tables and JSON).

:class:`Steps` for long commands (export, bench): a rich bar on a terminal, one plain line per step on stderr
when stderr is a pipe or a file (a bar draws nothing there, and a piped ``export`` was silent for 40-50 s).
:func:`track` wraps a loop and :class:`ProgressBar` is a bar advanced by hand with a status text (the
running loss) and ``note`` lines above it, for training, data tools and evaluation; ``enabled=False``: nothing.

Imports only the standard library and (lazily, on a terminal) rich.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


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


class ProgressBar:
    """A transient progress bar of ``total`` steps (None: unknown) labelled ``desc``; also a context manager."""

    def __init__(self, total: int | None, desc: str, enabled: bool = True) -> None:
        self.desc = desc
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(*Progress.get_default_columns(), transient=True, console=Console(stderr=True))
            self._task = self._bar.add_task(desc, total=total)
            self._bar.start()

    def advance(self, steps: int = 1, status: str | None = None) -> None:
        """Move ``steps`` forward; ``status`` (e.g. ``"loss=0.1234"``) is shown after the label."""
        if self._bar is not None:
            description = self.desc if status is None else f"{self.desc} {status}"
            self._bar.update(self._task, advance=steps, description=description)

    def note(self, line: str) -> None:
        """Print ``line`` above the bar (on stderr); printed plainly when the bar is disabled."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            import sys

            print(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], desc: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while a bar counts them (``total`` defaults to ``len(items)`` where defined)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with ProgressBar(total, desc, enabled) as bar:
        for item in items:
            yield item
            bar.advance()
