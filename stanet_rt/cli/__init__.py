"""The ``stanet-rt`` command line (typer).

Each command lives in its own module under ``stanet_rt/cli/`` and registers itself on ``app``.
Command modules import only typer/stdlib at module level; everything heavy (torch, onnxruntime, av)
is imported inside the command function, so ``stanet-rt --help`` stays instant. Every command is a
thin wrapper over a library function that the tests call directly.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="stanet-rt",
    help="Audio-visual saliency (STANet / STANet+): train, export, run, evaluate, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that register commands on ``app``; kept in one list so the order of ``--help`` is stable.
_COMMAND_MODULES = (
    "info",
    "audio",
    "doctor",
    "synth",
    "train",
    "export",
    "import_cmd",
    "run",
    "evaluate",
    "bench",
)


# Modules of the optional extras (pyproject.toml): a command that needs one says which extra to install.
OPTIONAL_MODULES = {"torch": "torch", "onnxscript": "train", "onnxconverter_common": "train", "tensorrt": "trt",
                    "cv2": "preview", "pysaliency": "dev"}


def fail(message: str, exit_code: int = 2) -> None:
    """Print ``error: <message>`` on one line to stderr and exit with ``exit_code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code)


def _version(value: bool) -> None:
    if value:
        from stanet_rt import __version__

        typer.echo(f"stanet-rt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Audio-visual saliency (STANet / STANet+): train, export, run, evaluate, benchmark."""


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"stanet_rt.cli.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"stanet_rt.cli.{name}":
                raise


_register()


def main() -> None:
    """Console-script entry point."""
    from stanet_rt.errors import StanetError

    try:
        app()
    except StanetError as exc:  # bad input: one clear line, non-zero exit
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_MODULES.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        typer.echo(f"error: this needs {exc.name}, which the base install leaves out: "
                   f"pip install 'stanet-rt[{extra}]'", err=True)
        sys.exit(2)
