"""Atomic output files: written to a temporary file beside the target, fsynced, then renamed into place.

A crash at any moment leaves either the previous file or the new one, never a truncated file that DVC
would cache as valid. Disk-full and permission errors become a NetpipeError naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import NetpipeError


class OutputError(NetpipeError):
    """An output could not be written (disk full, read-only or unwritable directory)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        why = "no space left on device"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (directory not writable)"
    else:
        why = exc.strerror or str(exc)
    return f"cannot write {path}: {why}; the previous file, if any, is left unchanged"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success it is renamed onto `path`.

    Use it for writers that want a file name (torch.save, onnx export, matplotlib savefig).
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, path)
        tmp = None
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise OutputError(_describe(exc, path)) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _remove_stale(path: Path) -> None:
    """Temporary files of earlier writes of `path` that a crash (SIGKILL, power loss) left behind."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def discard(path: str | os.PathLike) -> None:
    """Delete `path` and any temporary file an interrupted write of it left behind."""
    path = Path(path)
    path.unlink(missing_ok=True)
    _remove_stale(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[Path], None], suffix: str | None = None) -> None:
    """Call `writer(tmp_path)` and move the result onto `path` atomically."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)


def link_or_copy(src: str | os.PathLike, tmp: Path) -> None:
    """A `write_with` writer that gives `tmp` the content of `src`: a hard link where the filesystem allows one
    (no bytes copied: a 350 MB checkpoint costs nothing), else a copy. Only for a `src` that is never written in
    place afterwards (netpipe replaces files by renaming, so a link never sees a later change)."""
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(src, tmp)


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NetpipeError(f"{what} {path} not found") from None
    except (OSError, ValueError) as exc:
        raise NetpipeError(f"{what} {path} is unreadable or not valid JSON: {exc}") from None


def git_commit() -> "str | None":
    """The commit of the code that runs: the git checkout holding this package (12 hex digits, "+dirty" when its
    tracked files differ from it), or None when the package is not in a git checkout (a wheel install). Asked where
    the package lives, not in the working directory: an editable install runs its own checkout's code anywhere."""
    import subprocess

    where = str(Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
