"""Real-world files from ../shared/videos (see its README.md): each reads as the README says.

Skipped when the folder is absent: the files are test data from public repositories that the
project never ships.
"""

import logging
from pathlib import Path

import numpy as np
import pytest

from gan_jax.io import VideoDecodeError, probe_video, read_video

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
if not SHARED.is_dir():
    pytest.skip(f"no shared test videos at {SHARED}", allow_module_level=True)

# file -> (frames, display width, display height, fps or None, codec, rotation, declared frames)
EXPECTED = {
    "avi_xvid_mp3_ucf101_eyemakeup_320x240.avi": (164, 320, 240, 25.0, "mpeg4", 0, 164),
    "avi_mjpeg_dandi_rig_160x120_3f.avi": (3, 160, 120, 10.0, "mjpeg", 0, 3),
    "webm_vp8_vorbis_bigbuckbunny_1280x720_24f.webm": (24, 1280, 720, 24.0, "vp8", 0, None),
    "mov_h264_iphone_rot90_568x320_3f.mov": (3, 320, 568, 30.0, "h264", 90, 3),
    "gif_newtons_cradle_200x150_36f.gif": (36, 200, 150, 36 / 0.82, "gif", 0, 36),
    "mp4_h264_one_frame_1920x1080.mp4": (1, 1920, 1080, 1.0, "h264", 0, 1),
}
BROKEN = "broken_mp4_h264_corrupt_packet_1280x720.mp4"
UCF = "avi_xvid_mp3_ucf101_eyemakeup_320x240.avi"


def _path(name: str) -> str:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return str(path)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_reads_as_the_readme_says(name):
    frames, width, height, fps, codec, rotation, declared = EXPECTED[name]
    clip, info = read_video(_path(name))
    assert clip.dtype == np.uint8 and clip.shape == (frames, height, width, 3)
    assert (info.width, info.height, info.codec, info.rotation) == (width, height, codec, rotation)
    assert info.declared_frames == declared  # webm declares none: counted by decoding
    assert info.decoded_frames == frames
    if fps is not None:
        assert info.fps == pytest.approx(fps)
    probed = probe_video(_path(name))
    assert (probed.width, probed.height, probed.rotation) == (width, height, rotation)
    assert probed.declared_frames == declared and probed.decoded_frames is None


def test_gif_frame_delays_vary():
    name = "gif_newtons_cradle_200x150_36f.gif"
    assert probe_video(_path(name)).variable_frame_rate
    assert read_video(_path(name))[1].variable_frame_rate


def test_phone_clip_is_portrait_after_rotation():
    clip, info = read_video(_path("mov_h264_iphone_rot90_568x320_3f.mov"))
    assert clip.shape[1] > clip.shape[2] and info.rotation == 90


def test_one_frame_file_is_too_short_for_a_clip():
    with pytest.raises(VideoDecodeError, match=r"one_frame_1920x1080\.mp4.*only 1 frames"):
        read_video(_path("mp4_h264_one_frame_1920x1080.mp4"), num_frames=16)


def test_corrupt_mp4_raises_strict_and_returns_what_decodes_lenient(caplog):
    path = _path(BROKEN)
    with pytest.raises(VideoDecodeError, match=r"corrupt_packet_1280x720\.mp4: corrupt video data"):
        read_video(path)
    with caplog.at_level(logging.WARNING, logger="gan_jax.io.decode"):
        clip, info = read_video(path, strict=False)
    assert info.declared_frames == 50
    assert clip.shape == (49, 720, 1280, 3) and info.decoded_frames == 49
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "gan_jax.io.decode"]
    assert BROKEN in warning and "1 frame(s) lost" in warning


def test_ucf_clip_from_the_middle_and_resampled_match_a_full_decode():
    # XviD in AVI hands out frame timestamps out of order (packed B-frames); resampling by time
    # must still pick frames in order: 12.5 fps of a 25 fps file is every other frame.
    path = _path(UCF)
    full, _ = read_video(path)
    clip, _ = read_video(path, start=100, num_frames=8, stride=2)
    np.testing.assert_array_equal(clip, full[100:116:2])
    half_rate, _ = read_video(path, fps=12.5)
    np.testing.assert_array_equal(half_rate, full[::2])
    middle, _ = read_video(path, fps=12.5, start=40, num_frames=5)
    np.testing.assert_array_equal(middle, full[80:90:2])
