"""The clip cache: decoded, resized video timelines kept on disk as memory-mapped ``.npy`` files.

A video's whole resampled and resized timeline is decoded in chunks of ``_CACHE_CHUNK`` frames
into ``cache_dir/clips/<hash>.npy`` (written under a temporary name and renamed, so a cut-off
write is never read); clips are then sliced from it through ``mmap``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from collections.abc import Callable

import numpy as np

from gan_jax.data.video_folder.index import VideoEntry
from gan_jax.io import VideoDecodeError
from gan_jax.io.atomic import atomic_write

# Bumped whenever the meaning of a cached clip file changes.
_CLIP_CACHE_VERSION = 1
# Frames decoded at once when filling the clip cache: bounds host memory per worker.
_CACHE_CHUNK = 32


def cache_path(
    cache_dir: str | os.PathLike,
    root: str,
    entry: VideoEntry,
    ratio: float,
    size: tuple[int, int],
) -> pathlib.Path:
    """The cache file of ``entry``'s timeline at resampling ``ratio`` and frame ``size``.

    The name hashes the file's absolute path, size and mtime with the ratio and size, so a
    changed file or other settings get a new file.
    """
    key = json.dumps(
        [
            _CLIP_CACHE_VERSION,
            os.path.join(root, entry.path),
            entry.size,
            entry.mtime_ns,
            ratio,
            size,
        ]
    )
    name = hashlib.sha1(key.encode()).hexdigest() + ".npy"
    return pathlib.Path(cache_dir) / "clips" / name[:2] / name


def cached_timeline(path: pathlib.Path, write: Callable[[pathlib.Path], None]) -> np.ndarray:
    """The timeline stored at ``path``, memory-mapped; ``write(tmp)`` fills it first if missing.

    Returns:
      uint8 ``[n, h', w', 3]``, read-only.
    """
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        pass
    atomic_write(path, write)
    return np.load(path, mmap_mode="r")


def write_timeline(
    tmp: pathlib.Path,
    *,
    expected: int,
    read: Callable[[int, int], np.ndarray],
    resize: Callable[[np.ndarray], np.ndarray],
    video_path: str,
) -> None:
    """Decodes, resizes and stores a video's timeline chunk by chunk into ``tmp`` (.npy).

    Args:
      tmp: the file to write.
      expected: timeline length stated by the index; fewer frames are kept when fewer decode.
      read: ``read(first, count)`` -> uint8 frames ``first ..`` of the timeline, fewer when
        the video ends first.
      resize: uint8 frames at the decoded size -> frames at the cached size.
      video_path: the video file, named in the error.

    Raises:
      VideoDecodeError: no frame decodes.
    """
    out, written = None, 0
    while written < expected:
        wanted = min(_CACHE_CHUNK, expected - written)
        chunk = read(written, wanted)
        if len(chunk):
            chunk = resize(chunk)
            if out is None:
                out = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.uint8, shape=(expected, *chunk.shape[1:])
                )
            out[written : written + len(chunk)] = chunk
            written += len(chunk)
        if len(chunk) < wanted:
            break  # The video ends before the container said it would.
    if out is None:
        raise VideoDecodeError(f"{video_path}: no frames decoded")
    out.flush()
    if written < expected:
        # The container overstated its length: keep only what decodes, copied chunk by chunk
        # so that memory stays bounded.
        full = out

        def copy_decoded(short: pathlib.Path) -> None:
            kept = np.lib.format.open_memmap(
                short, mode="w+", dtype=np.uint8, shape=(written, *full.shape[1:])
            )
            for start in range(0, written, _CACHE_CHUNK):
                stop = min(start + _CACHE_CHUNK, written)
                kept[start:stop] = full[start:stop]
            kept.flush()

        atomic_write(tmp, copy_decoded)
        del full
    del out
