"""A folder of video files as a random-access source of clips ``[T, H, W, C]`` in [-1, 1].

Layout: ``root/**/*.{mp4,avi,webm,mkv,mov,gif}`` (extensions case-insensitive). With
``labels="auto"`` and every file inside a subfolder (UCF-101: ``root/ClassName/video.avi``), the
label of a file is the index of its first-level folder in the sorted folder names; with every file
directly in ``root`` there are no labels. A mix of both is an error (or use ``labels="none"``).

Index: the folder is scanned once per process; each file is probed for frame count, fps and size,
and the results are kept in ``cache_dir/index/<root hash>.json``. An entry is reused while the
file's path, size and mtime are unchanged, so adding or touching one file re-probes only that file.

Timeline: frames are first resampled, either every ``frame_stride``-th frame or at ``target_fps``
(by ``read_video``: the source frame nearest in time, variable frame rates included). A clip is
``num_frames`` consecutive frames of that timeline, starting at a random position
(``clip_start="random"``, drawn from ``(seed, epoch, index)``), at 0 (``"first"``) or in the
middle (``"centre"``). The timeline length comes from the probed frame count and fps; when a
container overstates its length and a clip runs past the real end, the clip is moved back to end
at the last real frame (a clip that starts past the real end fails like a damaged file).

Geometry: each frame is resized (Pillow, bilinear with area-averaging when shrinking) so that the
short side is ``resize_short_side``, or, when that is None, to the smallest size that covers
``height x width`` with the aspect ratio kept; then cropped to ``height x width`` at a random
(``crop="random"``) or centred (``"centre"``) offset, and optionally flipped left-right.

Policies: a video whose timeline is shorter than a clip raises ValueError when the source is built
(``too_short="raise"``), is left out with one log line (``"skip"``), or is padded by repeating its
last frame (``"pad"``). A file that fails to probe or decode raises ``VideoDecodeError``
(``decode_errors="raise"``) or is logged once per process and replaced by the next readable video
in index order (``"skip"``); the replacement depends only on which files fail, so it is
deterministic.

Clip cache (``clip_cache=True``): the first time a video is needed, its whole resampled and resized
timeline is decoded in chunks of ``_CACHE_CHUNK`` frames into an uncompressed ``.npy`` under
``cache_dir/clips`` (written to a temporary name and renamed, so a cut-off write is never read);
later clips are sliced from it through ``mmap``. Host memory stays bounded by a chunk and a clip,
never by a whole video; the cache needs about ``frames * h * w * 3`` bytes of disk per video.
Cached and uncached reads give identical clips.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import uuid
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from gan_jax.io.video import VideoDecodeError, probe_video, read_video

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")
CLIP_STARTS = ("random", "first", "centre")
CROPS = ("random", "centre")
LABEL_MODES = ("auto", "none")
TOO_SHORT_POLICIES = ("raise", "skip", "pad")
DECODE_ERROR_POLICIES = ("raise", "skip")
# Bumped whenever the meaning of a cached index entry or clip file changes.
_INDEX_VERSION = 1
_CLIP_CACHE_VERSION = 1
# Frames decoded at once when filling the clip cache: bounds host memory per worker.
_CACHE_CHUNK = 32
# Guard for floor(x / ratio): the quotient can land a hair below an integer in floating point.
_EPS = 1e-6
# Replacement attempts under decode_errors="skip" before concluding that the data is unusable.
_MAX_SKIPS = 64
_logged_once: set[str] = set()


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/gan_jax`` (``~/.cache/gan_jax`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gan_jax")


def _log_once(key: str, message: str, *args) -> None:
    """Logs a warning the first time ``key`` (a file's absolute path) is seen in this process."""
    if key not in _logged_once:
        _logged_once.add(key)
        logger.warning(message, *args)


def _atomic_write(path: pathlib.Path, write) -> None:
    """Calls ``write(tmp_path)`` then renames, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
        _atomic_write(index_path, lambda tmp: tmp.write_text(json.dumps(payload)))
    entries = []
    for rel, *_ in files:
        record = records[rel]
        if "error" in record:
            if decode_errors == "raise":
                raise VideoDecodeError(
                    f"{record['error']} (set decode_errors='skip' to leave such files out)"
                )
            _log_once(
                os.path.join(root, rel), "Skipping unreadable video %s: %s", rel, record["error"]
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


def resized_size(
    height: int, width: int, *, out_height: int, out_width: int, short_side: int | None
) -> tuple[int, int]:
    """Frame size after the short-side resize (aspect ratio kept).

    Args:
      height: source frame height.
      width: source frame width.
      out_height: H of the crop that must fit.
      out_width: W of the crop.
      short_side: target short side, or None for the smallest size that covers the crop.

    Returns:
      ``(new_height, new_width)``; may be smaller than the crop only with an explicit short_side
      (the caller reports that).
    """
    if short_side is None:
        scale = max(out_height / height, out_width / width)
        return max(out_height, round(height * scale)), max(out_width, round(width * scale))
    if height <= width:
        return short_side, max(short_side, round(width * short_side / height))
    return max(short_side, round(height * short_side / width)), short_side


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes uint8 ``[T, h, w, 3]`` to ``[T, size[0], size[1], 3]`` with Pillow, per frame.

    Pillow's bilinear filter widens its support when shrinking, so downscaling averages areas
    instead of aliasing.
    """
    if frames.shape[1:3] == tuple(size):
        return frames
    out = np.empty((len(frames), size[0], size[1], frames.shape[-1]), np.uint8)
    for t, frame in enumerate(frames):
        image = Image.fromarray(frame).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        out[t] = np.asarray(image)
    return out


def to_unit_range(frames: np.ndarray, channels: int) -> np.ndarray:
    """uint8 RGB ``[..., 3]`` -> float32 ``[..., channels]`` in [-1, 1] (grey = BT.601 luma)."""
    values = frames.astype(np.float32)
    if channels == 1:
        values = values @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return (values - 127.5) / 127.5


def timeline_length(num_source_frames: int, ratio: float) -> int:
    """Resampled frames that surely exist in a video of ``num_source_frames``.

    Resampled frame j is source frame ``j * ratio`` (``ratio`` = stride, or source fps / target
    fps), so frames up to ``(num_source_frames - 1) / ratio`` exist; exact for integer strides.
    """
    if num_source_frames <= 0:
        return 0
    return int(np.floor((num_source_frames - 1) / ratio + _EPS)) + 1


class VideoFolder:
    """Random-access clips from a folder of videos.

    ``load(index, epoch)`` is a pure function of the folder's contents, the settings, ``seed``,
    ``epoch`` and ``index``. See the module docstring for every setting.

    Attributes:
      entries: the videos in use, sorted by path.
      classes: class names (label i = classes[i]), or None without labels.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        num_frames: int,
        height: int,
        width: int,
        channels: int = 3,
        frame_stride: int = 1,
        target_fps: float | None = None,
        clip_start: str = "random",
        crop: str = "random",
        resize_short_side: int | None = None,
        random_flip: bool = False,
        labels: str = "auto",
        too_short: str = "raise",
        decode_errors: str = "raise",
        cache_dir: str | os.PathLike | None = None,
        clip_cache: bool = False,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        index_threads: int = 8,
        seed: int = 0,
    ):
        for name, value, allowed in (
            ("clip_start", clip_start, CLIP_STARTS),
            ("crop", crop, CROPS),
            ("labels", labels, LABEL_MODES),
            ("too_short", too_short, TOO_SHORT_POLICIES),
            ("decode_errors", decode_errors, DECODE_ERROR_POLICIES),
        ):
            if value not in allowed:
                raise ValueError(f"video_folder: {name} = {value!r}; allowed: {allowed}")
        for name, value in (("num_frames", num_frames), ("height", height), ("width", width)):
            if int(value) < 1:
                raise ValueError(f"video_folder: {name} must be >= 1, got {value}")
        if channels not in (1, 3):
            raise ValueError(f"video_folder: channels must be 1 or 3, got {channels}")
        if int(frame_stride) < 1:
            raise ValueError(f"video_folder: frame_stride must be >= 1, got {frame_stride}")
        if target_fps is not None and (target_fps <= 0 or frame_stride != 1):
            raise ValueError(
                f"video_folder: target_fps = {target_fps!r} must be > 0 and excludes "
                f"frame_stride (got {frame_stride}); set one of them"
            )
        if resize_short_side is not None and resize_short_side < 1:
            raise ValueError(
                f"video_folder: resize_short_side must be >= 1 or None, got {resize_short_side}"
            )
        self.root = os.path.abspath(os.fspath(root))
        self.num_frames = int(num_frames)
        self.height = int(height)
        self.width = int(width)
        self.channels = int(channels)
        self.frame_stride = int(frame_stride)
        self.target_fps = None if target_fps is None else float(target_fps)
        self.clip_start = clip_start
        self.crop = crop
        self.resize_short_side = None if resize_short_side is None else int(resize_short_side)
        self.random_flip = bool(random_flip)
        self.too_short = too_short
        self.decode_errors = decode_errors
        self.cache_dir = os.fspath(cache_dir or default_cache_dir())
        self.clip_cache = bool(clip_cache)
        self.seed = int(seed)
        entries = index_videos(
            self.root,
            cache_dir=self.cache_dir,
            extensions=extensions,
            decode_errors=decode_errors,
            num_threads=index_threads,
        )
        self.entries = self._check_entries(entries)
        if not self.entries:
            raise ValueError(f"video_folder: no usable videos left under {self.root!r}")
        self.classes = class_names(self.entries) if labels == "auto" else None
        if self.classes is not None:
            class_ids = {name: i for i, name in enumerate(self.classes)}
            self._labels = [class_ids[e.path.split("/", 1)[0]] for e in self.entries]

    def _ratio(self, entry: VideoEntry) -> float:
        """Source frames per resampled frame."""
        if self.target_fps is None:
            return float(self.frame_stride)
        return entry.fps / self.target_fps

    def _timeline_length(self, entry: VideoEntry) -> int:
        return timeline_length(entry.num_frames, self._ratio(entry))

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        return resized_size(
            height,
            width,
            out_height=self.height,
            out_width=self.width,
            short_side=self.resize_short_side,
        )

    def _check_entries(self, entries: list[VideoEntry]) -> list[VideoEntry]:
        """Applies the too-short policy and checks that every video can give a crop."""
        kept, short = [], []
        for entry in entries:
            if self.target_fps is not None and entry.fps <= 0:
                raise ValueError(
                    f"video_folder: {entry.path} states no frame rate, so target_fps cannot be "
                    "used; use frame_stride instead"
                )
            new_h, new_w = self._resized_size(entry.height, entry.width)
            if new_h < self.height or new_w < self.width:
                raise ValueError(
                    f"video_folder: {entry.path} ({entry.height}x{entry.width}) resized to "
                    f"short side {self.resize_short_side} is {new_h}x{new_w}, smaller than the "
                    f"{self.height}x{self.width} crop; raise resize_short_side or set it to None"
                )
            length = self._timeline_length(entry)
            if length >= self.num_frames or (self.too_short == "pad" and length > 0):
                kept.append(entry)
            else:
                short.append((entry, length))
        if short and self.too_short == "raise":
            listed = "; ".join(
                f"{e.path}: {e.num_frames} frames -> {n} clip frames" for e, n in short[:5]
            )
            raise ValueError(
                f"video_folder: {len(short)} video(s) too short for a clip of {self.num_frames} "
                f"frames (stride {self.frame_stride}, target_fps {self.target_fps}): {listed}. "
                "Set too_short='skip' or 'pad', or lower num_frames / frame_stride."
            )
        for entry, length in short:
            _log_once(
                os.path.join(self.root, entry.path),
                "Skipping %s: %d clip frames, a clip needs %d",
                entry.path,
                length,
                self.num_frames,
            )
        return kept

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.load(index, epoch=0)

    def load(self, index: int, epoch: int) -> dict[str, np.ndarray]:
        """Clip for ``(seed, epoch, index)``.

        Returns:
          ``{"video": float32 [T, H, W, C] in [-1, 1]}`` plus ``"label": int32`` when the folder
          has classes.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"video_folder: index {index} out of range [0, {len(self)})")
        # Random choices come from (seed, epoch, index) only, never from the order of calls.
        uniforms = np.random.default_rng([self.seed, int(epoch), int(index)]).random(4)
        for attempt in range(min(len(self), _MAX_SKIPS)):
            current = (index + attempt) % len(self)
            entry = self.entries[current]
            try:
                frames = self._clip_frames(entry, uniforms[0])
                frames = self._crop(frames, uniforms[1], uniforms[2], entry.path)
                break
            except VideoDecodeError as err:
                if self.decode_errors == "raise":
                    raise
                _log_once(os.path.join(self.root, entry.path), "Skipping unreadable video: %s", err)
        else:
            raise VideoDecodeError(
                f"video_folder: {min(len(self), _MAX_SKIPS)} videos in a row from "
                f"{self.entries[index].path} on failed to decode; check the files under "
                f"{self.root}"
            )
        if self.random_flip and uniforms[3] < 0.5:
            frames = frames[:, :, ::-1]
        example = {"video": to_unit_range(frames, self.channels)}
        if self.classes is not None:
            example["label"] = np.int32(self._labels[current])
        return example

    def _first_frame(self, length: int, uniform: float) -> int:
        """Start on the timeline for a video of ``length`` resampled frames."""
        room = max(0, length - self.num_frames)
        if self.clip_start == "first":
            return 0
        if self.clip_start == "centre":
            return room // 2
        return min(room, int(uniform * (room + 1)))

    def _clip_frames(self, entry: VideoEntry, uniform: float) -> np.ndarray:
        """Resized uint8 frames ``[T, h', w', 3]`` of one clip, from the cache or the file."""
        length = self._timeline_length(entry)
        first = self._first_frame(length, uniform)
        if self.clip_cache:
            timeline = self._cached_timeline(entry)
            try:
                first = self._fit_start(entry, first, len(timeline))
                frames = np.array(timeline[first : first + self.num_frames])
            finally:
                del timeline  # Unmaps the file: its pages leave this process's memory.
        else:
            frames = self._read_timeline(entry, first, self.num_frames)
            if len(frames) < self.num_frames:
                # The container overstated its length; now the true length is known.
                frames = self._reread_short(entry, first, frames)
            frames = resize_frames(frames, self._resized_size(*frames.shape[1:3]))
        return self._pad(entry, frames)

    def _fit_start(self, entry: VideoEntry, first: int, actual_length: int) -> int:
        """Moves a clip back so that it ends inside a timeline of ``actual_length`` frames."""
        if first + self.num_frames <= actual_length:
            return first
        if actual_length >= self.num_frames:
            return actual_length - self.num_frames
        if self.too_short == "pad" and actual_length > 0:
            return 0
        raise VideoDecodeError(
            f"{os.path.join(self.root, entry.path)}: only {actual_length} clip frames decode "
            f"(the container states {entry.num_frames} source frames); a clip needs "
            f"{self.num_frames}"
        )

    def _reread_short(self, entry: VideoEntry, first: int, frames: np.ndarray) -> np.ndarray:
        """Re-reads a clip that ran past the real end of the video (same rule as the cache).

        ``frames`` are all the frames from ``first`` to the real end, so the true timeline
        length is ``first + len(frames)``.
        """
        new_first = self._fit_start(entry, first, first + len(frames))
        if new_first == first:
            return frames  # Too short even from frame 0: padded later.
        return self._read_timeline(entry, new_first, self.num_frames)

    def _crop(self, frames: np.ndarray, uniform_y: float, uniform_x: float, path: str):
        """Crops ``[T, h', w', 3]`` to ``[T, H, W, 3]`` (random or centred offset)."""
        room_y = frames.shape[1] - self.height
        room_x = frames.shape[2] - self.width
        if room_y < 0 or room_x < 0:
            raise VideoDecodeError(
                f"{os.path.join(self.root, path)}: frames decode at {frames.shape[1:3]}, which "
                f"cannot hold a {self.height}x{self.width} crop (the container stated another "
                "size)"
            )
        if self.crop == "centre":
            top, left = room_y // 2, room_x // 2
        else:
            top, left = int(uniform_y * (room_y + 1)), int(uniform_x * (room_x + 1))
        return frames[:, top : top + self.height, left : left + self.width]

    def _pad(self, entry: VideoEntry, frames: np.ndarray) -> np.ndarray:
        """Repeats the last frame up to T frames (``too_short="pad"``)."""
        missing = self.num_frames - len(frames)
        if missing <= 0:
            return frames
        if self.too_short != "pad" or len(frames) == 0:
            raise VideoDecodeError(
                f"{os.path.join(self.root, entry.path)}: {len(frames)} clip frames decode, a "
                f"clip needs {self.num_frames}"
            )
        return np.concatenate([frames, np.repeat(frames[-1:], missing, axis=0)])

    def _read_timeline(self, entry: VideoEntry, first: int, count: int) -> np.ndarray:
        """Decodes resampled frames ``first .. first + count - 1``, fewer if the video ends first.

        Returns:
          uint8 ``[m, h, w, 3]`` at the decoded size, ``0 < m <= count``; ``m < count`` means
          that the timeline ends at ``first + m`` (the container overstated its length).

        Raises:
          VideoDecodeError: the file is damaged, or no frame exists at ``first``.
        """
        try:
            return self._decode(entry, first, count)
        except VideoDecodeError as err:
            # Either the container overstated its length or the file is damaged; reading to the
            # end tells which (it returns fewer frames only in the first case).
            try:
                frames = self._decode(entry, first, None)
            except VideoDecodeError:
                raise err from None
            if len(frames) >= count:
                raise
            return frames

    def _decode(self, entry: VideoEntry, first: int, count: int | None) -> np.ndarray:
        """read_video for resampled frames ``first ..`` (``count`` of them, None = to the end)."""
        path = os.path.join(self.root, entry.path)
        if self.target_fps is None:
            frames, _ = read_video(
                path,
                start=first * self.frame_stride,
                num_frames=count,
                stride=self.frame_stride,
            )
        else:
            # The I/O layer resamples by timestamps (nearest source frame to k / fps), which also
            # handles a variable frame rate.
            frames, _ = read_video(path, start=first, num_frames=count, fps=self.target_fps)
        return frames

    def _cache_path(self, entry: VideoEntry) -> pathlib.Path:
        key = json.dumps(
            [
                _CLIP_CACHE_VERSION,
                os.path.join(self.root, entry.path),
                entry.size,
                entry.mtime_ns,
                self._ratio(entry),
                self._resized_size(entry.height, entry.width),
            ]
        )
        name = hashlib.sha1(key.encode()).hexdigest() + ".npy"
        return pathlib.Path(self.cache_dir) / "clips" / name[:2] / name

    def _cached_timeline(self, entry: VideoEntry) -> np.ndarray:
        """The video's whole resized timeline ``[n, h', w', 3]`` uint8, memory-mapped."""
        path = self._cache_path(entry)
        try:
            return np.load(path, mmap_mode="r")
        except FileNotFoundError:
            pass
        _atomic_write(path, lambda tmp: self._write_timeline(entry, tmp))
        return np.load(path, mmap_mode="r")

    def _write_timeline(self, entry: VideoEntry, tmp: pathlib.Path) -> None:
        """Decodes, resizes and stores a video's timeline chunk by chunk into ``tmp`` (.npy)."""
        expected = self._timeline_length(entry)
        out, written = None, 0
        while written < expected:
            wanted = min(_CACHE_CHUNK, expected - written)
            chunk = self._read_timeline(entry, written, wanted)
            if len(chunk):
                chunk = resize_frames(chunk, self._resized_size(*chunk.shape[1:3]))
                if out is None:
                    out = np.lib.format.open_memmap(
                        tmp, mode="w+", dtype=np.uint8, shape=(expected, *chunk.shape[1:])
                    )
                out[written : written + len(chunk)] = chunk
                written += len(chunk)
            if len(chunk) < wanted:
                break  # The video ends before the container said it would.
        if out is None:
            raise VideoDecodeError(f"{os.path.join(self.root, entry.path)}: no frames decoded")
        out.flush()
        if written < expected:
            # The container overstated its length: keep only what decodes, copied chunk by chunk
            # so that memory stays bounded.
            full, short = out, tmp.with_suffix(".short.tmp")
            try:
                out = np.lib.format.open_memmap(
                    short, mode="w+", dtype=np.uint8, shape=(written, *full.shape[1:])
                )
                for start in range(0, written, _CACHE_CHUNK):
                    stop = min(start + _CACHE_CHUNK, written)
                    out[start:stop] = full[start:stop]
                out.flush()
                del full
                os.replace(short, tmp)
            finally:
                if short.exists():
                    short.unlink()
        del out
