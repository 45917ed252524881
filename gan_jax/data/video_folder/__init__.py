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
``time_range=(start, end)`` keeps clips inside that fraction of each timeline, e.g. ``(0.0, 0.8)``
to train and ``(0.8, 1.0)`` for held-out clips of the same videos; both ends are rounded alike,
so ranges that meet share no frame.

Geometry: each frame is resized (Pillow, bilinear with area-averaging when shrinking) so that the
short side is ``resize_short_side``, or, when that is None, to the smallest size that covers
``height x width`` with the aspect ratio kept; then cropped to ``height x width`` at a random
(``crop="random"``) or centred (``"centre"``) offset, and optionally flipped left-right.

Policies: a video whose timeline is shorter than a clip raises DataError when the source is built
(``too_short="raise"``), is left out with one log line (``"skip"``), or is padded by repeating its
last frame (``"pad"``). A file that fails to probe or decode raises ``UnreadableVideoError``, a
``DataError`` that names the file and ``--config.data.decode_errors=skip``
(``decode_errors="raise"``), or is logged once per process and replaced by the next readable video
in index order (``"skip"``, the run config's default: see ``dataset``); the replacement depends
only on which files fail, so it is deterministic and a resumed run sees the same batches.

Errors: anything that leaves the folder without a usable video (missing or empty folder, only
files with other endings, every file unreadable, every video too short) is a ``DataError`` raised
when the source is built, i.e. during config validation, with one line naming the folder and the
config key to change.

Clip cache (``clip_cache=True``): the first time a video is needed, its whole resampled and resized
timeline is decoded in chunks of ``_CACHE_CHUNK`` frames into an uncompressed ``.npy`` under
``cache_dir/clips`` (written to a temporary name and renamed, so a cut-off write is never read);
later clips are sliced from it through ``mmap``. Host memory stays bounded by a chunk and a clip,
never by a whole video; the cache needs about ``frames * h * w * 3`` bytes of disk per video.
Cached and uncached reads give identical clips.

Modules, each depending only on those listed before it:

- ``transforms``: resize, crop, flip, value range and timeline length (pure functions).
- ``index``: finding and probing the files, the JSON index, class names, ``VideoEntry``.
- ``clip_cache``: decoded, resized timelines on disk as memory-mapped ``.npy`` files.
- ``source``: ``VideoFolder``, the clips, their start and crop, and the policies.
- ``dataset``: the dataset "video_folder" of the trainer: config keys, spec, batches.
"""

from gan_jax.data.video_folder.dataset import (
    default_config,
    make_dataset,
    make_source,
    spec,
    validate,
)
from gan_jax.data.video_folder.index import (
    DECODE_ERROR_POLICIES,
    VIDEO_EXTENSIONS,
    UnreadableVideoError,
    VideoEntry,
    class_names,
    default_cache_dir,
    find_videos,
    frame_count,
    index_videos,
)
from gan_jax.data.video_folder.source import (
    CLIP_STARTS,
    LABEL_MODES,
    TOO_SHORT_POLICIES,
    VideoFolder,
)
from gan_jax.data.video_folder.transforms import (
    CROPS,
    resize_frames,
    resized_size,
    timeline_length,
    to_unit_range,
)

__all__ = [
    "CLIP_STARTS",
    "CROPS",
    "DECODE_ERROR_POLICIES",
    "LABEL_MODES",
    "TOO_SHORT_POLICIES",
    "VIDEO_EXTENSIONS",
    "UnreadableVideoError",
    "VideoEntry",
    "VideoFolder",
    "class_names",
    "default_cache_dir",
    "default_config",
    "find_videos",
    "frame_count",
    "index_videos",
    "make_dataset",
    "make_source",
    "resize_frames",
    "resized_size",
    "spec",
    "timeline_length",
    "to_unit_range",
    "validate",
]
