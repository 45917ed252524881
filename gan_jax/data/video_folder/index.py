"""The index of a video folder: which video files it holds and what each one is.

Finds the files, probes them in threads for frame count, fps and size, keeps the results in an
on-disk JSON index (reused for unchanged files), and derives class names from sub-folders.

A folder that cannot give a single video (missing, empty, no file with a video ending, or every
file unreadable) raises `DataError` here, when the source is built, with one line naming the
folder and the config key to change, rather than later in the training loop.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import re
import threading
from collections.abc import Iterable, Sequence

from gan_jax.errors import DataError
from gan_jax.io import VideoDecodeError, probe_video, read_video
from gan_jax.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")
DECODE_ERROR_POLICIES = ("raise", "skip")
# Bumped whenever the meaning of a cached index entry changes.
_INDEX_VERSION = 1
_logged_once: set[str] = set()
# Loading threads share the set: without the lock two of them could both report one file.
_logged_once_lock = threading.Lock()
# The run-config override that leaves unreadable files out, named in every error about one.
SKIP_HINT = "--config.data.decode_errors=skip"
# Advice of the video reader meant for Python callers of read_video; the dataset sets `strict`
# itself, so a user of the CLI cannot act on it.
_PYTHON_ONLY_ADVICE = re.compile(r",? or pass strict=False[^;.)]*")


class UnreadableVideoError(DataError, VideoDecodeError):
    """A video file cannot be probed or decoded and ``decode_errors="raise"``.

    Both a `DataError` (the CLI prints its message as one line, exit status 2) and a
    `VideoDecodeError` (what a Python caller of the source catches for a damaged file). The
    message names the file and ``data.decode_errors``.
    """


def reader_message(cause: VideoDecodeError | str) -> str:
    """The video reader's message without advice that only a Python caller can follow."""
    return _PYTHON_ONLY_ADVICE.sub("", str(cause))


def unreadable_video(path: str, cause: VideoDecodeError | str) -> UnreadableVideoError:
    """The error for an unreadable ``path`` under ``decode_errors="raise"``, saying how to skip.

    Args:
      path: the file's absolute path (named unless ``cause`` already names it).
      cause: the reader's error or its message.
    """
    text = reader_message(cause).rstrip(". ")
    if path not in text:
        text = f"{path}: {text}"
    return UnreadableVideoError(
        f"{text}. To leave damaged files out (each is logged once) set {SKIP_HINT}, or "
        "re-encode or remove this one"
    )


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/gan_jax`` (``~/.cache/gan_jax`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gan_jax")


def log_once(log: logging.Logger, key: str, message: str, *args) -> None:
    """Logs a warning the first time ``key`` (a file's absolute path) is seen in this process.

    One set of keys serves the whole video_folder package, so a file is reported once whether
    the index or the source finds it unusable.
    """
    with _logged_once_lock:
        if key in _logged_once:
            return
        _logged_once.add(key)
    log.warning(message, *args)


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One indexed video file.

    Attributes:
      path: path relative to the root, '/'-separated.
      size: file size in bytes (part of the cache key).
      mtime_ns: modification time (part of the cache key).
      num_frames: frames in the file (decoded count if known, else the container's count).
      fps: average frame rate (0 when the container gives none).
      height: display height of a frame.
      width: display width of a frame.
    """

    path: str
    size: int
    mtime_ns: int
    num_frames: int
    fps: float
    height: int
    width: int


def find_videos(
    root: str | os.PathLike, extensions: Iterable[str] = VIDEO_EXTENSIONS
) -> list[tuple[str, int, int]]:
    """Video files under ``root``, recursively, sorted by relative path.

    Returns:
      ``[(relative_path, size, mtime_ns)]`` with '/'-separated relative paths.

    Raises:
      DataError: ``root`` is not a directory.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(
            f"data.root={root} does not exist or is not a directory: point --config.data.root "
            "at your folder of videos"
        )
    wanted = tuple(ext.lower() for ext in extensions)
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(wanted):
                continue
            full = os.path.join(dirpath, name)
            stat = os.stat(full)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            found.append((rel, stat.st_size, stat.st_mtime_ns))
    found.sort()
    return found


def require_videos(
    root: str | os.PathLike, extensions: Iterable[str] = VIDEO_EXTENSIONS
) -> list[tuple[str, int, int]]:
    """``find_videos``, or a `DataError` saying what ``root`` holds instead of videos.

    Raises:
      DataError: ``root`` is missing, empty, or holds only files with other endings.
    """
    root, extensions = os.fspath(root), tuple(extensions)
    files = find_videos(root, extensions)
    if files:
        return files
    others = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        others += [os.path.join(dirpath, n) for n in sorted(filenames) if not n.startswith(".")]
    if others:
        example = os.path.relpath(others[0], root).replace(os.sep, "/")
        content = f"only {len(others)} other file(s), e.g. {example!r}"
    else:
        content = "nothing"
    raise DataError(
        f"data.root={root} holds no video files (looked for {', '.join(extensions)} in it and "
        f"its sub-folders; found {content}): point --config.data.root at your folder of "
        "videos, or add their file ending to data.extensions"
    )


def frame_count(path: str | os.PathLike, info) -> int:
    """Frames in a video: the decoded count, else the container's, else duration * fps.

    Decodes the file only when the container states neither a frame count nor a duration.
    """
    if info.decoded_frames:
        return int(info.decoded_frames)
    if info.declared_frames:
        return int(info.declared_frames)
    if info.duration and info.fps:
        return int(round(info.duration * info.fps))
    _, decoded = read_video(path)
    return int(decoded.decoded_frames or 0)


def _probe_entry(root: str, rel: str, size: int, mtime_ns: int) -> dict:
    """Index record of one file: VideoEntry fields, or ``error`` when it cannot be read."""
    path = os.path.join(root, rel)
    record = {"path": rel, "size": size, "mtime_ns": mtime_ns}
    try:
        info = probe_video(path)
        count = frame_count(path, info)
        if count <= 0:
            raise VideoDecodeError(f"{path}: no frames")
        record.update(
            num_frames=count, fps=float(info.fps), height=int(info.height), width=int(info.width)
        )
    except VideoDecodeError as err:
        record["error"] = str(err)
    return record


def index_videos(
    root: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
    decode_errors: str = "raise",
    num_threads: int = 8,
) -> list[VideoEntry]:
    """Probes every video under ``root`` (reusing ``cache_dir``'s index for unchanged files).

    Args:
      root: the video folder.
      cache_dir: where the JSON index lives; None = ``default_cache_dir()``.
      extensions: file name endings to include (case-insensitive).
      decode_errors: "raise": a file that cannot be probed raises `UnreadableVideoError`
        naming it; "skip": it is logged once and left out.
      num_threads: probes run in this many threads (decoding releases the GIL).

    Returns:
      Readable videos, sorted by relative path; never empty.

    Raises:
      DataError: ``root`` is missing, holds no file with a video ending, or (under "skip")
        none of its files can be read; `UnreadableVideoError` (a DataError) for the first
        unreadable file under "raise".
    """
    if decode_errors not in DECODE_ERROR_POLICIES:
        raise ValueError(
            f"data.decode_errors = {decode_errors!r}; allowed: {DECODE_ERROR_POLICIES}"
        )
    extensions = tuple(extensions)
    root = os.path.abspath(os.fspath(root))
    files = require_videos(root, extensions)
    cache_dir = pathlib.Path(cache_dir or default_cache_dir())
    index_path = cache_dir / "index" / (hashlib.sha1(root.encode()).hexdigest()[:16] + ".json")
    cached = {}
    try:
        stored = json.loads(index_path.read_text())
        if stored.get("version") == _INDEX_VERSION and stored.get("root") == root:
            cached = stored["entries"]
    except (OSError, ValueError, KeyError):
        pass  # No usable index yet: everything is probed.
    records, to_probe = {}, []
    for rel, size, mtime_ns in files:
        old = cached.get(rel)
        if old is not None and old["size"] == size and old["mtime_ns"] == mtime_ns:
            records[rel] = old
        else:
            to_probe.append((rel, size, mtime_ns))
    if to_probe:
        logger.info("Probing %d of %d video files under %s", len(to_probe), len(files), root)
        with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
            for record in pool.map(lambda f: _probe_entry(root, *f), to_probe):
                records[record["path"]] = record
    if to_probe or len(records) != len(cached):
        payload = {"version": _INDEX_VERSION, "root": root, "entries": records}
        atomic_write_text(index_path, json.dumps(payload))
    entries, unreadable = [], []
    for rel, *_ in files:
        record = records[rel]
        if "error" in record:
            if decode_errors == "raise":
                raise unreadable_video(os.path.join(root, rel), record["error"])
            unreadable.append(record)
            log_once(
                logger,
                os.path.join(root, rel),
                "Skipping unreadable video %s (data.decode_errors=skip): %s",
                rel,
                reader_message(record["error"]),
            )
            continue
        entries.append(VideoEntry(**record))
    if not entries:
        first = unreadable[0]
        raise DataError(
            f"data.root={root}: none of its {len(files)} video file(s) can be read (first: "
            f"{first['path']}: {reader_message(first['error'])}); check that "
            "they are videos and not damaged, or point --config.data.root elsewhere"
        )
    return entries


def class_names(entries: Sequence[VideoEntry]) -> list[str] | None:
    """Sorted first-level folder names, or None when every file sits directly in the root."""
    nested = [e.path for e in entries if "/" in e.path]
    flat = [e.path for e in entries if "/" not in e.path]
    if nested and flat:
        raise DataError(
            f"data.root holds files at its top level ({flat[0]!r}) and in class folders "
            f"({nested[0]!r}), so data.labels='auto' cannot tell their classes: move them into "
            "class folders, or set data.labels='none' (--config.data.labels=none)"
        )
    if not nested:
        return None
    return sorted({p.split("/", 1)[0] for p in nested})
