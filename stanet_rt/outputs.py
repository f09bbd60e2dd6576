"""Up-front checks of the paths a command will write, before anything is read, loaded or written.

:func:`check_outputs` refuses, with one :class:`~stanet_rt.errors.InputError` line naming the path and
the problem: an output that is one of the inputs (also through symlinks, relative paths and hard
links: resolved paths and inodes are compared), two outputs on the same path, a file output that is an
existing folder, a folder output that is an existing file, a file where a folder is expected on the
way to the output, a name component longer than the file system allows (255 bytes), and a place the
process cannot write (checked by creating, and at once removing, a probe file there: permission bits
alone do not stop root, while a read-only mount or ``/proc`` does).

Imports only the standard library and ``stanet_rt.errors``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from stanet_rt.errors import InputError

NAME_MAX = 255  # bytes per path component on Linux / macOS file systems (pathconf is asked where it exists)

PathLike = str | os.PathLike


def _identity(path: Path) -> tuple:
    """What makes two paths the same file: (device, inode) when it exists, else the resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", st.st_dev, st.st_ino)


def _is_device(path: Path) -> bool:
    """A character device such as /dev/null (not a file that one output would overwrite for another)."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _existing_ancestor(path: Path) -> Path:
    """The deepest ancestor of ``path`` (absolute, symlinks resolved) that exists on disk."""
    current = Path(os.path.realpath(path))
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _check_names(path: Path, option: str) -> None:
    limit = _name_max(_existing_ancestor(path))
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise InputError(f"{path}: {option}: a name in the path is {size} bytes long (the limit is {limit})")


def _probe_write(folder: Path, path: Path, option: str) -> None:
    """Create and remove a file in ``folder`` (an existing folder), or raise an InputError for ``path``."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".stanet-rt-probe-", dir=folder)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise InputError(f"{path}: {option}: cannot write in {folder} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def _check_one(path: Path, option: str, kind: str) -> None:
    """Shape and writability checks of one output; ``kind`` is "file" or "folder"."""
    _check_names(path, option)
    exists = os.path.exists(path)
    if kind == "file" and exists and os.path.isdir(path):
        raise InputError(f"{path}: {option}: is a folder; give a file name")
    if kind == "folder" and exists and not os.path.isdir(path):
        raise InputError(f"{path}: {option}: is a file; give a folder")
    if kind == "folder" and exists:
        _probe_write(Path(os.path.realpath(path)), path, option)
        return
    if kind == "file" and exists:
        try:  # opening without O_TRUNC and closing leaves the file as it was (O_NONBLOCK: a FIFO never hangs)
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:
            raise InputError(f"{path}: {option}: cannot write ({os.strerror(exc.errno or errno.EACCES)})") from None
        return
    ancestor = _existing_ancestor(path)
    if not os.path.isdir(ancestor):
        raise InputError(f"{path}: {option}: {ancestor} is a file, not a folder")
    _probe_write(ancestor, path, option)


def check_outputs(inputs: Iterable[PathLike | None] = (), files: Mapping[str, PathLike | None] | None = None,
                  folders: Mapping[str, PathLike | None] | None = None) -> None:
    """Refuse bad output paths before any work: raise :class:`InputError` (one line naming the path).

    ``inputs``: paths the command reads (models, media, data; entries that are not existing files,
    e.g. ``lavfi:`` sources or None, are skipped). ``files`` / ``folders``: option name (as the user
    typed it, e.g. ``"-o"``) -> the file / folder it writes, or None when not given. Nothing is
    created: a probe file is made and removed at once to test that a place is writable; folders
    that do not exist yet are left for the command to create.
    """
    outputs = [(opt, Path(p), "file") for opt, p in (files or {}).items() if p is not None]
    outputs += [(opt, Path(p), "folder") for opt, p in (folders or {}).items() if p is not None]
    sources = {}
    for p in inputs:
        if p is not None and os.path.isfile(p):
            sources[_identity(Path(p))] = p
    seen: dict[tuple, str] = {}
    for option, path, _kind in outputs:
        key = _identity(path)
        if key in sources:
            raise InputError(f"{path}: {option} is the input {sources[key]}; writing it would destroy the input "
                             "(choose another output path)")
        if key in seen and not _is_device(path):  # /dev/null may take several outputs
            raise InputError(f"{path}: given as both {seen[key]} and {option}; give each output its own path")
        seen[key] = option
    for option, path, kind in outputs:
        _check_one(path, option, kind)
