"""The video-folder source: ``VideoFolder``, random-access clips ``load(index, epoch)``.

Checks the settings, applies the too-short and decode-error policies, picks each clip's start
and crop from ``(seed, epoch, index)``, and reads the clip from the file or the clip cache.

Errors a user can fix are `DataError`s (one line from the CLI) naming the file or folder and the
config key that changes the outcome: a folder with no usable video fails when the source is
built; a file that fails to decode mid-training under ``decode_errors="raise"`` fails as
`UnreadableVideoError` (a DataError and a VideoDecodeError) when its clip is loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from gan_jax.data.video_folder.clip_cache import cache_path, cached_timeline, write_timeline
from gan_jax.data.video_folder.index import (
    DECODE_ERROR_POLICIES,
    VIDEO_EXTENSIONS,
    VideoEntry,
    class_names,
    default_cache_dir,
    index_videos,
    log_once,
    reader_message,
    unreadable_video,
)
from gan_jax.data.video_folder.transforms import (
    CROPS,
    crop_frames,
    flip_left_right,
    resize_frames,
    resized_size,
    timeline_length,
    to_unit_range,
)
from gan_jax.errors import DataError
from gan_jax.io import VideoDecodeError, read_video

logger = logging.getLogger(__name__)

CLIP_STARTS = ("random", "first", "centre")
LABEL_MODES = ("auto", "none")
TOO_SHORT_POLICIES = ("raise", "skip", "pad")
# Replacement attempts under decode_errors="skip" before concluding that the data is unusable.
_MAX_SKIPS = 64


class VideoFolder:
    """Random-access clips from a folder of videos.

    ``load(index, epoch)`` is a pure function of the folder's contents, the settings, ``seed``,
    ``epoch`` and ``index``. See the ``gan_jax.data.video_folder`` package docstring for every
    setting.

    ``decode_errors`` defaults to "raise" here, so that a Python caller sees every damaged file;
    the run config's default is "skip" (see ``gan_jax.data.video_folder.dataset``).

    Raises:
      DataError: on construction, when the folder gives no usable video (see ``index_videos``
        and the too-short policy) or a video cannot give a crop of the configured size.

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
        time_range: Sequence[float] = (0.0, 1.0),
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
        time_range = tuple(float(x) for x in time_range)
        if len(time_range) != 2 or not 0.0 <= time_range[0] < time_range[1] <= 1.0:
            raise ValueError(
                f"video_folder: time_range = {time_range!r} must be (start, end) fractions of "
                "each video with 0 <= start < end <= 1, e.g. (0.0, 0.8) to train on the first "
                "80 % and (0.8, 1.0) for the held-out rest"
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
        self.time_range = time_range
        self.seed = int(seed)
        entries = index_videos(
            self.root,
            cache_dir=self.cache_dir,
            extensions=extensions,
            decode_errors=decode_errors,
            num_threads=index_threads,
        )
        self.entries = self._check_entries(entries)
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

    def _span(self, entry: VideoEntry) -> tuple[int, int]:
        """``[first, end)`` of the timeline that clips come from (``time_range``).

        Both ends are rounded the same way, so ranges that meet, such as (0, 0.8) and
        (0.8, 1), split a video into spans that share no frame.
        """
        length = self._timeline_length(entry)
        start, end = self.time_range
        return round(start * length), round(end * length)

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        return resized_size(
            height,
            width,
            out_height=self.height,
            out_width=self.width,
            short_side=self.resize_short_side,
        )

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        """Decoded uint8 frames ``[T, h, w, 3]`` -> ``[T, h', w', 3]`` before the crop."""
        return resize_frames(frames, self._resized_size(*frames.shape[1:3]))

    def _check_entries(self, entries: list[VideoEntry]) -> list[VideoEntry]:
        """Applies the too-short policy and checks that every video can give a crop.

        Returns:
          The entries in use; never empty.

        Raises:
          DataError: naming the file or folder and the config keys that would fix it.
        """
        kept, short = [], []
        for entry in entries:
            if self.target_fps is not None and entry.fps <= 0:
                raise DataError(
                    f"{os.path.join(self.root, entry.path)} states no frame rate, so "
                    "data.target_fps cannot be used: set data.target_fps=None and use "
                    "data.frame_stride instead"
                )
            new_h, new_w = self._resized_size(entry.height, entry.width)
            if new_h < self.height or new_w < self.width:
                raise DataError(
                    f"{os.path.join(self.root, entry.path)} ({entry.height}x{entry.width}) "
                    f"resized to short side data.resize_short_side={self.resize_short_side} is "
                    f"{new_h}x{new_w}, smaller than the {self.height}x{self.width} crop: raise "
                    "data.resize_short_side or set it to None"
                )
            first, end = self._span(entry)
            length = end - first
            if length >= self.num_frames or (self.too_short == "pad" and length > 0):
                kept.append(entry)
            else:
                short.append((entry, length))
        clip = (
            f"a clip of data.num_frames={self.num_frames} frames (data.frame_stride="
            f"{self.frame_stride}, data.target_fps={self.target_fps}, data.time_range="
            f"{self.time_range})"
        )
        if not kept:
            # Skipping would leave nothing, so only a shorter clip or padding can help.
            longest = max((n for _, n in short), default=0)
            raise DataError(
                f"data.root={self.root}: all {len(short)} video(s) are too short for {clip}; "
                f"the longest gives {longest} clip frame(s): lower data.num_frames or "
                "data.frame_stride, or set --config.data.too_short=pad (repeats a video's last "
                "frame)"
            )
        if short and self.too_short == "raise":
            listed = "; ".join(
                f"{e.path}: {e.num_frames} frames -> {n} clip frames" for e, n in short[:5]
            )
            raise DataError(
                f"data.root={self.root}: {len(short)} video(s) too short for {clip}: {listed}. "
                "Set --config.data.too_short=skip (or pad), or lower data.num_frames / "
                "data.frame_stride"
            )
        for entry, length in short:
            log_once(
                logger,
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
                frames = crop_frames(
                    frames,
                    height=self.height,
                    width=self.width,
                    crop=self.crop,
                    uniform_y=uniforms[1],
                    uniform_x=uniforms[2],
                    path=os.path.join(self.root, entry.path),
                )
                break
            except VideoDecodeError as err:
                if self.decode_errors == "raise":
                    raise unreadable_video(os.path.join(self.root, entry.path), err) from err
                log_once(
                    logger,
                    os.path.join(self.root, entry.path),
                    "Skipping unreadable video (data.decode_errors=skip): %s",
                    reader_message(err),
                )
        else:
            raise DataError(
                f"data.root={self.root}: {min(len(self), _MAX_SKIPS)} videos in a row from "
                f"{self.entries[index].path} on failed to decode although "
                "data.decode_errors=skip; check the files under data.root (the log names each)"
            )
        if self.random_flip and uniforms[3] < 0.5:
            frames = flip_left_right(frames)
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
        span_first, span_end = self._span(entry)
        first = span_first + self._first_frame(span_end - span_first, uniform)
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
            frames = self._resize(frames)
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

    def _cached_timeline(self, entry: VideoEntry) -> np.ndarray:
        """The video's whole resized timeline ``[n, h', w', 3]`` uint8, memory-mapped."""
        path = cache_path(
            self.cache_dir,
            self.root,
            entry,
            self._ratio(entry),
            self._resized_size(entry.height, entry.width),
        )
        return cached_timeline(
            path,
            lambda tmp: write_timeline(
                tmp,
                expected=self._timeline_length(entry),
                read=lambda first, count: self._read_timeline(entry, first, count),
                resize=self._resize,
                video_path=os.path.join(self.root, entry.path),
            ),
        )
