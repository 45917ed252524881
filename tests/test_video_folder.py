"""Tests for the video-folder source (index, clips, geometry, policies, caches)."""

import json
import logging
import os
import pathlib
import shutil

import av
import numpy as np
import pytest

from gan_jax.data import video_folder
from gan_jax.data.pipeline import make_dataset
from gan_jax.data.video_folder import VideoFolder, resized_size
from gan_jax.io import VideoDecodeError

HEIGHT, WIDTH, FPS = 32, 48, 10
# Relative path -> number of frames. Frame k of every video is flat grey at level 8k + 4.
VIDEOS = {"ClassA/a0.mp4": 24, "ClassA/a1.MP4": 20, "ClassB/b0.mp4": 24}


def _write_video(path: pathlib.Path, frames: np.ndarray, fps: int = FPS) -> None:
    """Lossless H.264 (crf 0), so that decoded levels are within a unit of the written ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _numbered_frames(count: int) -> np.ndarray:
    levels = 8 * np.arange(count) + 4
    return np.broadcast_to(
        levels[:, None, None, None].astype(np.uint8), (count, HEIGHT, WIDTH, 3)
    ).copy()


def _frame_numbers(video: np.ndarray) -> list[int]:
    """Inverse of _numbered_frames for a float clip in [-1, 1]."""
    levels = (video.mean(axis=(1, 2, 3)) + 1.0) * 127.5
    return np.round((levels - 4.0) / 8.0).astype(int).tolist()


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("ucf") / "videos"
    for rel, count in VIDEOS.items():
        _write_video(root / rel, _numbered_frames(count))
    return root


@pytest.fixture
def root(ucf_root, tmp_path) -> pathlib.Path:
    """A private copy of the fixture folder that a test may change."""
    return pathlib.Path(shutil.copytree(ucf_root, tmp_path / "videos"))


def _folder(root, cache_dir, **overrides) -> VideoFolder:
    settings = dict(num_frames=4, height=16, width=16, frame_stride=2, cache_dir=cache_dir)
    return VideoFolder(root, **{**settings, **overrides})


def _patch_reader(monkeypatch, name: str, replacement) -> None:
    """Replaces the I/O function <name> in every video_folder module that calls it."""
    for module in (video_folder.index, video_folder.source):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, replacement)


def _count_calls(monkeypatch, name: str) -> list:
    """Replaces the I/O function <name> by a wrapper that records its path arguments."""
    original, calls = getattr(video_folder.index, name), []

    def counting(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return original(path, *args, **kwargs)

    _patch_reader(monkeypatch, name, counting)
    return calls


def test_labels_come_from_sorted_class_folders(ucf_root, tmp_path):
    folder = _folder(ucf_root, tmp_path)
    assert folder.classes == ["ClassA", "ClassB"]
    assert [e.path for e in folder.entries] == sorted(VIDEOS)  # upper-case .MP4 is found too
    assert [int(folder.load(i, 0)["label"]) for i in range(3)] == [0, 0, 1]
    assert [e.num_frames for e in folder.entries] == [VIDEOS[p] for p in sorted(VIDEOS)]
    assert folder.entries[0].fps == FPS and folder.entries[0].height == HEIGHT


def test_files_at_the_root_have_no_labels(tmp_path):
    root = tmp_path / "flat"
    _write_video(root / "one.mp4", _numbered_frames(10))
    _write_video(root / "two.mov", _numbered_frames(10))
    folder = _folder(root, tmp_path / "cache")
    assert folder.classes is None and len(folder) == 2
    assert set(folder.load(1, 0)) == {"video"}
    _write_video(root / "Class" / "three.mp4", _numbered_frames(10))
    with pytest.raises(ValueError, match="labels='none'"):
        _folder(root, tmp_path / "cache")
    assert "label" not in _folder(root, tmp_path / "cache", labels="none").load(2, 0)


def test_clip_shape_dtype_and_range(ucf_root, tmp_path):
    example = _folder(ucf_root, tmp_path, height=16, width=24).load(2, 0)
    assert example["video"].shape == (4, 16, 24, 3)
    assert example["video"].dtype == np.float32
    assert example["video"].min() >= -1.0 and example["video"].max() <= 1.0
    assert example["label"].dtype == np.int32
    grey = _folder(ucf_root, tmp_path, channels=1).load(2, 0)["video"]
    assert grey.shape == (4, 16, 16, 1)


def test_fixed_starts_pick_the_right_frames(ucf_root, tmp_path):
    first = _folder(ucf_root, tmp_path, clip_start="first")
    assert _frame_numbers(first.load(0, 0)["video"]) == [0, 2, 4, 6]
    centre = _folder(ucf_root, tmp_path, clip_start="centre")
    # 24 frames at stride 2 -> 12 clip frames, room 8 -> start 4; 20 -> 10, room 6 -> start 3.
    assert _frame_numbers(centre.load(0, 0)["video"]) == [8, 10, 12, 14]
    assert _frame_numbers(centre.load(1, 0)["video"]) == [6, 8, 10, 12]
    unit_stride = _folder(ucf_root, tmp_path, clip_start="first", frame_stride=1)
    assert _frame_numbers(unit_stride.load(2, 0)["video"]) == [0, 1, 2, 3]


def test_target_fps_resamples_in_time(ucf_root, tmp_path):
    half_rate = _folder(ucf_root, tmp_path, clip_start="centre", frame_stride=1, target_fps=5.0)
    assert _frame_numbers(half_rate.load(0, 0)["video"]) == [8, 10, 12, 14]
    with pytest.raises(ValueError, match="target_fps"):
        _folder(ucf_root, tmp_path, target_fps=5.0, frame_stride=2)


def test_random_starts_are_deterministic_and_vary_with_epoch(ucf_root, tmp_path):
    folder = _folder(ucf_root, tmp_path, seed=11)
    again = _folder(ucf_root, tmp_path, seed=11)
    starts = set()
    for epoch in range(8):
        clip = folder.load(0, epoch)["video"]
        np.testing.assert_array_equal(clip, again.load(0, epoch)["video"])
        numbers = _frame_numbers(clip)
        assert numbers == list(range(numbers[0], numbers[0] + 8, 2))  # consecutive at stride 2
        assert 0 <= numbers[0] and numbers[-1] < 24
        starts.add(numbers[0])
    assert len(starts) > 2
    other = _folder(ucf_root, tmp_path, seed=12)
    assert any(
        not np.array_equal(folder.load(0, e)["video"], other.load(0, e)["video"]) for e in range(8)
    )


def test_time_range_splits_each_video_into_train_and_held_out_frames(ucf_root, tmp_path):
    # Stride 1: video 0 has a 24-frame timeline; (0, 0.75) -> frames 0..17, (0.75, 1) -> 18..23.
    train = _folder(ucf_root, tmp_path, frame_stride=1, time_range=(0.0, 0.75), seed=3)
    held_out = _folder(ucf_root, tmp_path, frame_stride=1, time_range=(0.75, 1.0), seed=3)
    seen_train, seen_held_out = set(), set()
    for epoch in range(12):
        seen_train.update(_frame_numbers(train.load(0, epoch)["video"]))
        seen_held_out.update(_frame_numbers(held_out.load(0, epoch)["video"]))
    assert seen_train <= set(range(18)) and {0, 17} <= seen_train  # starts reach both ends
    assert seen_held_out == set(range(18, 24))
    centre = _folder(ucf_root, tmp_path, frame_stride=1, clip_start="centre", time_range=(0.5, 1))
    assert _frame_numbers(centre.load(0, 0)["video"]) == [16, 17, 18, 19]  # 12 + (12 - 4) // 2
    with pytest.raises(ValueError, match=r"time_range = \(0.8, 0.2\) must be \(start, end\)"):
        _folder(ucf_root, tmp_path, time_range=(0.8, 0.2))
    # Too short inside the range: the error names the range.
    with pytest.raises(Exception, match=r"data.time_range=\(0.9, 1.0\)"):
        _folder(ucf_root, tmp_path, frame_stride=1, time_range=(0.9, 1.0))


def test_resized_size_keeps_aspect_and_covers_the_crop():
    assert resized_size(96, 128, out_height=64, out_width=64, short_side=None) == (64, 85)
    assert resized_size(128, 96, out_height=64, out_width=64, short_side=None) == (85, 64)
    assert resized_size(96, 128, out_height=48, out_width=64, short_side=None) == (48, 64)
    assert resized_size(96, 128, out_height=64, out_width=64, short_side=72) == (72, 96)
    assert resized_size(96, 128, out_height=16, out_width=80, short_side=None) == (60, 80)


def test_centre_crop_geometry(tmp_path):
    # Three vertical bands across the width: black | grey | white, 16 source columns each.
    frames = np.zeros((8, HEIGHT, WIDTH, 3), np.uint8)
    frames[:, :, 16:32] = 128
    frames[:, :, 32:] = 255
    _write_video(tmp_path / "bands" / "bands.mp4", frames)

    def columns(**overrides):
        folder = _folder(tmp_path / "bands", tmp_path / "cache", crop="centre", **overrides)
        video = folder.load(0, 0)["video"]
        return (video[0, :, :, 0].mean(axis=0) + 1) * 127.5  # [W] mean level per column

    # Cover 16x16: 32x48 -> 16x24, centre crop keeps resized columns 4..19 (source 8..39):
    # crop columns 0-3 black, 4-11 grey, 12-15 white.
    level = columns()
    assert level.shape == (16,)
    np.testing.assert_allclose(level[[0, 1, 2]], 0, atol=3)
    np.testing.assert_allclose(level[[5, 6, 7, 8, 9, 10]], 128, atol=3)
    np.testing.assert_allclose(level[[13, 14, 15]], 255, atol=3)
    # Short side 24: 32x48 -> 24x36, centre crop keeps columns 10..25 (source 13.3..34.7):
    # crop columns 0-1 black, 2-13 grey, 14-15 white.
    level = columns(resize_short_side=24)
    np.testing.assert_allclose(level[0], 0, atol=3)
    np.testing.assert_allclose(level[[4, 7, 11]], 128, atol=3)
    np.testing.assert_allclose(level[15], 255, atol=3)
    with pytest.raises(ValueError, match="resize_short_side"):
        _folder(tmp_path / "bands", tmp_path / "cache", resize_short_side=8)


def test_clip_cache_second_epoch_decodes_nothing(ucf_root, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    uncached = _folder(ucf_root, cache_dir, seed=3)
    expected = {(i, e): uncached.load(i, e)["video"] for i in range(3) for e in range(3)}
    reads = _count_calls(monkeypatch, "read_video")
    probes = _count_calls(monkeypatch, "probe_video")
    cached = _folder(ucf_root, cache_dir, seed=3, clip_cache=True)
    for i in range(3):
        np.testing.assert_array_equal(cached.load(i, 0)["video"], expected[i, 0])
    assert reads, "the first epoch must decode to fill the cache"
    reads.clear()
    # A fresh source (as in a new worker or a restarted run) reads only the caches.
    again = _folder(ucf_root, cache_dir, seed=3, clip_cache=True)
    for epoch in (1, 2):
        for i in range(3):
            np.testing.assert_array_equal(again.load(i, epoch)["video"], expected[i, epoch])
    assert reads == [] and probes == []
    leftovers = [p for p in cache_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_index_is_reprobed_only_for_changed_files(root, tmp_path, monkeypatch):
    _folder(root, tmp_path / "cache")
    probes = _count_calls(monkeypatch, "probe_video")
    _folder(root, tmp_path / "cache")
    assert probes == []
    changed = root / "ClassB" / "b0.mp4"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _folder(root, tmp_path / "cache")
    assert probes == [str(changed)]


def test_unreadable_file_raises_or_is_skipped_and_logged_once(root, tmp_path, caplog):
    (root / "ClassB" / "broken.avi").write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoDecodeError, match="broken.avi"):
        _folder(root, tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger=video_folder.__name__):
        first = _folder(root, tmp_path / "cache", decode_errors="skip")
        _folder(root, tmp_path / "cache", decode_errors="skip")
    assert len(first) == 3
    assert sum("broken.avi" in r.getMessage() for r in caplog.records) == 1


def test_decode_failure_while_reading(root, tmp_path, monkeypatch, caplog):
    original = video_folder.source.read_video

    def failing(path, *args, **kwargs):
        if os.path.basename(path).startswith("a1"):
            raise VideoDecodeError(f"{path}: corrupt packet")
        return original(path, *args, **kwargs)

    _patch_reader(monkeypatch, "read_video", failing)
    strict = _folder(root, tmp_path / "cache", clip_start="first")
    with pytest.raises(VideoDecodeError, match="a1.MP4"):
        strict.load(1, 0)
    skipping = _folder(root, tmp_path / "cache", clip_start="first", decode_errors="skip")
    with caplog.at_level(logging.WARNING, logger=video_folder.__name__):
        replaced = skipping.load(1, 0)
        skipping.load(1, 1)
    # The next video in index order (ClassB/b0) stands in, deterministically.
    assert int(replaced["label"]) == 1
    np.testing.assert_array_equal(replaced["video"], skipping.load(2, 0)["video"])
    assert sum("a1.MP4" in r.getMessage() for r in caplog.records) == 1


def test_too_short_policies(ucf_root, tmp_path):
    # 11 frames at stride 2 need 21 source frames: a1 (20 frames) is too short.
    with pytest.raises(ValueError, match=r"a1\.MP4: 20 frames"):
        _folder(ucf_root, tmp_path, num_frames=11)
    assert len(_folder(ucf_root, tmp_path, num_frames=11, too_short="skip")) == 2
    padded = _folder(ucf_root, tmp_path, num_frames=11, too_short="pad", clip_start="first")
    assert _frame_numbers(padded.load(1, 0)["video"]) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 18]
    cached = _folder(
        ucf_root, tmp_path, num_frames=11, too_short="pad", clip_start="first", clip_cache=True
    )
    np.testing.assert_array_equal(cached.load(1, 0)["video"], padded.load(1, 0)["video"])


def test_overstated_frame_count_moves_the_clip_back(root, tmp_path):
    cache_dir = tmp_path / "cache"
    _folder(root, cache_dir)
    # Pretend the container of a0 (24 frames) declared 46: a centred 4-frame clip then starts at
    # 21 and runs past the real end; it must end at the last real frame instead.
    (index_file,) = (cache_dir / "index").glob("*.json")
    index = json.loads(index_file.read_text())
    index["entries"]["ClassA/a0.mp4"]["num_frames"] = 46
    index_file.write_text(json.dumps(index))
    settings = dict(frame_stride=1, clip_start="centre")
    uncached = _folder(root, cache_dir, **settings)
    assert uncached.entries[0].num_frames == 46
    assert _frame_numbers(uncached.load(0, 0)["video"]) == [20, 21, 22, 23]
    cached = _folder(root, cache_dir, clip_cache=True, **settings)
    assert _frame_numbers(cached.load(0, 0)["video"]) == [20, 21, 22, 23]


def test_make_dataset_on_a_video_folder(ucf_root, tmp_path):
    config = {
        "name": "video_folder",
        "root": str(ucf_root),
        "num_frames": 3,
        "height": 8,
        "width": 8,
        "cache_dir": str(tmp_path),
        "num_epochs": 1,
    }
    batches = list(make_dataset(config, batch_size=3, seed=0, process_index=0, process_count=1))
    assert len(batches) == 1
    assert batches[0]["video"].shape == (3, 3, 8, 8, 3)
    assert sorted(batches[0]["label"].tolist()) == [0, 0, 1]
