"""Atomic file writes: a reader (or a run killed mid-write) never sees a partial file.

Every file the project writes whole (config.json, eval results, videos, caches, feature
networks) goes through `atomic_write`: the content is written to a temporary name in the same
directory and renamed over the target, which POSIX makes atomic on one file system.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Callable


def temporary_name(path: str | os.PathLike) -> pathlib.Path:
    """A hidden, unique sibling of `path` (same directory, so the rename stays atomic)."""
    path = pathlib.Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


def atomic_write(path: str | os.PathLike, write: Callable[[pathlib.Path], None]) -> pathlib.Path:
    """Calls `write(tmp_path)`, then renames `tmp_path` to `path`.

    Args:
        path: the file to create or replace; its directory is created if missing.
        write: writes the whole content to the path it is given. If it raises, `path` is left
            as it was and the temporary file is removed.

    Returns:
        `path`, as a `pathlib.Path`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Writes `data` to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
