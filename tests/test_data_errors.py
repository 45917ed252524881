"""Data the user cannot train on as configured: one-line errors naming the file or folder and the
config key to change, raised as early as possible, and damaged files skipped or reported.

Covers the issue "Reliability": a video damaged mid-stream (its headers probe fine, a packet in
the middle is garbage) is skipped and logged once under ``decode_errors="skip"`` (the default), or
stops the pipeline with a `DataError` naming the file and ``--config.data.decode_errors=skip``,
also from grain worker processes, which leave no shared memory behind; and folders or settings
that cannot give a single clip fail at validation.
"""

import logging
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from video_fixtures import corrupted_copy, moving_pattern, write_test_video

from gan_jax import build, config
from gan_jax.data import bouncing_shapes, video_folder
from gan_jax.data.pipeline import make_dataset, make_source
from gan_jax.errors import USER_ERRORS, DataError

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_FRAMES = 8  # per video; a clip is the whole video, so every clip of the damaged one fails
SKIP_KEY = "--config.data.decode_errors=skip"


@pytest.fixture(scope="module")
def damaged_folder(tmp_path_factory) -> pathlib.Path:
    """Three good h264 mp4s and ``b_damaged.mp4``, whose middle packet is overwritten."""
    root = tmp_path_factory.mktemp("damaged") / "videos"
    root.mkdir()
    for name in ("a.mp4", "c.mp4", "d.mp4"):
        write_test_video(root / name, moving_pattern(NUM_FRAMES, 24, 32), codec="libx264", gop=4)
    corrupted_copy(root / "a.mp4", root / "b_damaged.mp4")
    return root


@pytest.fixture
def folder(damaged_folder, tmp_path) -> pathlib.Path:
    """A private copy: "logged once per process" is per path, so each test needs its own."""
    return pathlib.Path(shutil.copytree(damaged_folder, tmp_path / "videos"))


def _config(root, cache_dir, **overrides) -> dict:
    return {
        "name": "video_folder",
        "root": str(root),
        "cache_dir": str(cache_dir),
        "num_frames": NUM_FRAMES,
        "height": 8,
        "width": 8,
        "num_threads": 1,
        **overrides,
    }


def _one_line_naming(err: Exception, *parts: str) -> None:
    text = str(err)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


def test_damaged_file_is_skipped_by_default_and_logged_once(folder, tmp_path, caplog):
    config = _config(folder, tmp_path / "cache", num_epochs=2)
    assert video_folder.default_config().decode_errors == "skip"
    with caplog.at_level(logging.WARNING, logger=video_folder.__name__):
        batches = list(make_dataset(config, batch_size=2, seed=0, process_index=0, process_count=1))
    assert len(batches) == 4  # 4 files x 2 epochs: the damaged file's clips were replaced
    warnings = [r.getMessage() for r in caplog.records if "b_damaged.mp4" in r.getMessage()]
    assert len(warnings) == 1 and "decode_errors=skip" in warnings[0]
    # Replacements are deterministic: a resumed iterator continues with the same batches.
    first = make_dataset(config, batch_size=2, seed=0, process_index=0, process_count=1)
    next(first)
    resumed = make_dataset(config, batch_size=2, seed=0, process_index=0, process_count=1)
    resumed.set_state(first.get_state())
    for expected in batches[1:]:
        np.testing.assert_array_equal(next(resumed)["video"], expected["video"])


def test_damaged_file_under_raise_names_the_file_and_the_key(folder, tmp_path):
    config = _config(folder, tmp_path / "cache", decode_errors="raise", num_epochs=1)
    batches = make_dataset(config, batch_size=1, seed=0, process_index=0, process_count=1)
    with pytest.raises(DataError) as caught:
        list(batches)
    _one_line_naming(caught.value, str(folder / "b_damaged.mp4"), SKIP_KEY)
    assert "strict=False" not in str(caught.value)  # a Python argument the CLI cannot set


_WORKER_SCRIPT = textwrap.dedent(
    """
    import sys

    from gan_jax.data.pipeline import make_dataset
    from gan_jax.errors import DataError


    def main(root, cache_dir):
        config = {
            "name": "video_folder", "root": root, "cache_dir": cache_dir, "num_frames": 8,
            "height": 8, "width": 8, "num_threads": 1, "prefetch": 1, "num_workers": 2,
            "decode_errors": "raise",
        }
        batches = make_dataset(config, batch_size=1, seed=0, process_index=0, process_count=1)
        kept = []  # batches alive after close, as the trainer's last batch is
        try:
            for _ in range(8):
                kept.append(next(batches))
            print("no error")
        except DataError as err:
            print(f"DataError after {len(kept)} batches: {err}")
        finally:
            batches.close()


    if __name__ == "__main__":  # grain's workers are spawned: they import this file
        main(*sys.argv[1:])
    """
)


def test_worker_processes_raise_data_error_and_leave_no_shared_memory(folder, tmp_path):
    # A subprocess, because Python's resource tracker reports leaked shared memory only when
    # the process that used it exits.
    script = tmp_path / "pull_batches.py"
    script.write_text(_WORKER_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "DataError after" in result.stdout, result.stdout + result.stderr
    assert "b_damaged.mp4" in result.stdout and SKIP_KEY in result.stdout
    assert "leaked shared_memory" not in result.stderr, result.stderr


def test_empty_folder_fails_at_validation(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as caught:
        video_folder.validate(_config(tmp_path / "empty", tmp_path / "cache"))
    _one_line_naming(caught.value, f"data.root={tmp_path / 'empty'}", "holds no video files")
    assert "found nothing" in str(caught.value)


def test_folder_of_non_video_files_fails_at_validation(tmp_path):
    root = tmp_path / "not_videos"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("not a video")
    (root / "sub" / "frame.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError) as caught:
        video_folder.validate(_config(root, tmp_path / "cache"))
    _one_line_naming(caught.value, f"data.root={root}", ".mp4", "notes.txt", "data.extensions")


def test_folder_of_unreadable_videos_names_the_key(tmp_path):
    root = tmp_path / "fake_videos"
    root.mkdir()
    for name in ("x.mp4", "y.avi"):
        (root / name).write_bytes(b"this is not a video" * 50)
    cfg = _config(root, tmp_path / "cache")
    with pytest.raises(DataError) as caught:  # skip (the default) leaves nothing
        make_source(cfg)
    _one_line_naming(caught.value, f"data.root={root}", "none of its 2 video file(s)", "x.mp4")
    with pytest.raises(DataError) as caught:
        make_source({**cfg, "decode_errors": "raise"})
    _one_line_naming(caught.value, str(root / "x.mp4"), SKIP_KEY)


def _video_folder_run_config(root, cache_dir, **data):
    """The shipped video_folder config over ``root`` with tiny clips (validation only)."""
    cfg = config.load_config_file(ROOT / "experiments" / "configs" / "video_folder.py")
    for key, value in {
        "root": str(root),
        "cache_dir": str(cache_dir),
        "num_frames": NUM_FRAMES,
        "height": 8,
        "width": 8,
        "frame_stride": 1,
        **data,
    }.items():
        config.override(cfg, f"data.{key}", str(value))
    return cfg


@pytest.mark.parametrize("too_short", ["raise", "skip"])
def test_every_video_too_short_fails_at_validation(damaged_folder, tmp_path, too_short):
    cfg = _video_folder_run_config(
        damaged_folder, tmp_path / "cache", num_frames=NUM_FRAMES + 1, too_short=too_short
    )
    with pytest.raises(USER_ERRORS) as caught:
        build.validate(cfg)
    _one_line_naming(
        caught.value,
        f"all 4 video(s) are too short for a clip of data.num_frames={NUM_FRAMES + 1}",
        f"the longest gives {NUM_FRAMES}",
        "--config.data.too_short=pad",
    )


def test_num_objects_out_of_range_fails_at_validation():
    cfg = config.load_config_file(ROOT / "experiments" / "configs" / "tiny.py")
    config.override(cfg, "data.num_objects", "(1, 9)")
    with pytest.raises(config.ConfigError) as caught:
        build.validate(cfg)
    _one_line_naming(caught.value, "data.num_objects = (1, 9)", "[1, 8]")
    with pytest.raises(config.ConfigError, match=r"data\.num_objects = \(0, 2\)"):
        bouncing_shapes.validate(
            {**bouncing_shapes.default_config().to_dict(), "num_objects": (0, 2)}
        )
