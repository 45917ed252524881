"""The index of a video folder: which video files it holds and what each one is.

Finds the files, probes them in threads for frame count, fps and size, keeps the results in an
on-disk JSON index (reused for unchanged files), and derives class names from sub-folders.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
from collections.abc import Iterable, Sequence

from gan_jax.io import VideoDecodeError, probe_video, read_video
from gan_jax.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")
DECODE_ERROR_POLICIES = ("raise", "skip")
# Bumped whenever the meaning of a cached index entry changes.
_INDEX_VERSION = 1
_logged_once: set[str] = set()


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/gan_jax`` (``~/.cache/gan_jax`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gan_jax")


def log_once(log: logging.Logger, key: str, message: str, *args) -> None:
    """Logs a warning the first time ``key`` (a file's absolute path) is seen in this process.

    One set of keys serves the whole video_folder package, so a file is reported once whether
    the index or the source finds it unusable.
    """
    if key not in _logged_once:
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
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"video folder {root!r} does not exist or is not a directory")
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
      decode_errors: "raise": a file that cannot be probed raises VideoDecodeError naming it;
        "skip": it is logged once and left out.
      num_threads: probes run in this many threads (decoding releases the GIL).

    Returns:
      Readable videos, sorted by relative path.
    """
    if decode_errors not in DECODE_ERROR_POLICIES:
        raise ValueError(f"decode_errors = {decode_errors!r}; allowed: {DECODE_ERROR_POLICIES}")
    root = os.path.abspath(os.fspath(root))
    files = find_videos(root, extensions)
    if not files:
        raise ValueError(
            f"video folder {root!r} holds no video files with extensions {tuple(extensions)}"
        )
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
    entries = []
    for rel, *_ in files:
        record = records[rel]
        if "error" in record:
            if decode_errors == "raise":
                raise VideoDecodeError(
                    f"{record['error']} (set decode_errors='skip' to leave such files out)"
                )
            log_once(
                logger,
                os.path.join(root, rel),
                "Skipping unreadable video %s: %s",
                rel,
                record["error"],
            )
            continue
        entries.append(VideoEntry(**record))
    return entries


def class_names(entries: Sequence[VideoEntry]) -> list[str] | None:
    """Sorted first-level folder names, or None when every file sits directly in the root."""
    nested = [e.path for e in entries if "/" in e.path]
    flat = [e.path for e in entries if "/" not in e.path]
    if nested and flat:
        raise ValueError(
            f"video folder mixes files at its root ({flat[0]!r}) with files in class folders "
            f"({nested[0]!r}); move them into class folders or set labels='none'"
        )
    if not nested:
        return None
    return sorted({p.split("/", 1)[0] for p in nested})
