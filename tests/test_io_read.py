"""gan_jax.io probe/selection/decode: every container, rotation, VFR, damage, selection, seeking."""

import logging
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from video_fixtures import (
    FPS,
    MARKER,
    corrupted_copy,
    frame_numbers,
    moving_pattern,
    remuxed_copy,
    truncated_copy,
    write_test_video,
)

import gan_jax.io.decode as decode_module
from gan_jax.io import VideoDecodeError, VideoInfo, probe_video, read_video

T, H, W = 16, 24, 32
LONG = 60  # frames of the seek-test file, keyframe every 10
VFR_PTS_MS = [0, 40, 80, 200, 240, 400, 440, 480, 700, 740, 780, 820]

# name -> (file name, write_test_video arguments, expected codec, declares a frame count)
CONTAINERS = {
    "mp4_h264": ("a.mp4", dict(codec="libx264"), "h264", True),
    "mov_h264": ("a.mov", dict(codec="libx264"), "h264", True),
    "mkv_h264": ("a.mkv", dict(codec="libx264"), "h264", False),
    "webm_vp8": ("a8.webm", dict(codec="libvpx", codec_options={"b": "2M"}), "vp8", False),
    "webm_vp9": ("a9.webm", dict(codec="libvpx-vp9", codec_options={"crf": "10"}), "vp9", False),
    "avi_mjpeg": ("j.avi", dict(codec="mjpeg", pix_fmt="yuvj420p"), "mjpeg", True),
    "avi_mpeg4": ("m.avi", dict(codec="mpeg4", codec_options={"b": "2M"}), "mpeg4", True),
    "gif_grey": ("a.gif", dict(codec="gif", pix_fmt="gray", channels=1, fps=10), "gif", True),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Every test video, written once per module."""
    folder = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, (file_name, arguments, _, _) in CONTAINERS.items():
        arguments = dict(arguments)
        clip = moving_pattern(T, H, W, channels=arguments.pop("channels", 3))
        paths[name] = write_test_video(folder / file_name, clip, **arguments)
    faststart = {"movflags": "+faststart"}  # index first, so a cut file still declares 16
    paths["mp4_faststart"] = write_test_video(
        folder / "fs.mp4", moving_pattern(T, H, W), codec="libx264", container_options=faststart
    )
    paths["long_mp4"] = write_test_video(
        folder / "long.mp4", moving_pattern(LONG, H, W), codec="libx264", gop=LONG // 6
    )
    paths["long_mjpeg"] = write_test_video(
        folder / "long.avi", moving_pattern(LONG, H, W), codec="mjpeg", pix_fmt="yuvj420p"
    )
    paths["vfr_mp4"] = write_test_video(
        folder / "vfr.mp4",
        moving_pattern(len(VFR_PTS_MS), H, W),
        codec="libx264",
        pts=VFR_PTS_MS,
        time_base=Fraction(1, 1000),
    )
    return paths


def _red_marker_centre(frame: np.ndarray) -> np.ndarray:
    """(row, column) centre of the saturated red pixels of ``frame`` ``[H, W, 3]``."""
    red = (frame[..., 0] > 180) & (frame[..., 1] < 90) & (frame[..., 2] < 90)
    return np.argwhere(red).mean(axis=0)


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_reads_every_container_in_order(videos, name):
    _, _, codec, declares = CONTAINERS[name]
    clip, info = read_video(videos[name])
    assert clip.dtype == np.uint8 and clip.shape == (T, H, W, 3)
    np.testing.assert_array_equal(frame_numbers(clip, T), np.arange(T))
    assert info.codec == codec
    assert info.declared_frames == (T if declares else None)
    assert info.decoded_frames == T
    assert (info.width, info.height, info.rotation, info.stream_index) == (W, H, 0, 0)
    assert info.fps == pytest.approx(10 if name == "gif_grey" else FPS)
    assert not info.variable_frame_rate
    probed = probe_video(videos[name])
    assert probed == VideoInfo(**{**vars(info), "decoded_frames": None})


@pytest.mark.parametrize("extension", ["mp4", "mov"])
@pytest.mark.parametrize(("counter_clockwise", "clockwise"), [(-90, 90), (90, 270), (180, 180)])
def test_display_matrix_rotation_is_applied(tmp_path, extension, counter_clockwise, clockwise):
    source = moving_pattern(4, H, W)
    path = write_test_video(
        tmp_path / f"r.{extension}", source, codec="libx264", rotation=counter_clockwise
    )
    clip, info = read_video(path)
    expected = np.rot90(source, k=-clockwise // 90, axes=(1, 2))
    assert info.rotation == clockwise
    assert clip.shape == expected.shape
    assert (info.width, info.height) == (expected.shape[2], expected.shape[1])
    np.testing.assert_allclose(_red_marker_centre(clip[0]), _red_marker_centre(expected[0]), atol=1)
    assert probe_video(path).rotation == clockwise


def test_portrait_phone_clip_comes_out_portrait(tmp_path):
    # A phone held upright stores landscape frames plus a -90 degree (counter-clockwise) matrix.
    source = moving_pattern(4, H, W)
    clip, info = read_video(
        write_test_video(tmp_path / "p.mov", source, codec="libx264", rotation=-90)
    )
    assert clip.shape == (4, W, H, 3) and (info.width, info.height) == (H, W)
    # Clockwise quarter turn: the stored top-left marker ends up top-right.
    row, col = _red_marker_centre(clip[0])
    assert row < MARKER and col > H - MARKER


def test_legacy_rotate_tag_is_applied(tmp_path):
    # Old FFmpeg builds wrote a clockwise "rotate" tag instead of a display matrix.
    source = moving_pattern(4, H, W)
    path = write_test_video(
        tmp_path / "tag.mkv", source, codec="libx264", stream_metadata={"rotate": "90"}
    )
    clip, info = read_video(path)
    assert info.rotation == 90 and clip.shape == (4, W, H, 3)
    expected = np.rot90(source, k=-1, axes=(1, 2))
    np.testing.assert_allclose(_red_marker_centre(clip[0]), _red_marker_centre(expected[0]), atol=1)


def test_variable_frame_rate_is_detected_and_resampled_by_timestamp(videos):
    path = videos["vfr_mp4"]
    assert probe_video(path).variable_frame_rate
    clip, info = read_video(path)
    assert info.variable_frame_rate and len(clip) == len(VFR_PTS_MS)
    # At 10 fps, frame k is the source frame nearest k * 100 ms (ties to the earlier one).
    resampled, _ = read_video(path, fps=10)
    times = np.asarray(VFR_PTS_MS)
    expected = [int(np.argmin(np.abs(times - 100 * k))) for k in range(len(resampled))]
    assert len(resampled) == 10  # the last frame lasts to 945 ms
    np.testing.assert_array_equal(frame_numbers(resampled, len(VFR_PTS_MS)), expected)
    # The same frames come out when the read starts mid-file (seek by time).
    middle, _ = read_video(path, fps=10, start=5, num_frames=3)
    np.testing.assert_array_equal(middle, resampled[5:8])
    # Source-frame numbering after a seek cannot come from VFR timestamps; it must still be right.
    by_index, _ = read_video(path, start=5, num_frames=3)
    np.testing.assert_array_equal(by_index, clip[5:8])


PIXEL_FORMATS = {
    # name -> (file, write arguments, channels of the source, exact (lossless) or not)
    "h264_yuv444_odd": ("o.mp4", dict(codec="libx264", pix_fmt="yuv444p"), 3, False),
    "ffv1_grey": ("g.mkv", dict(codec="ffv1", pix_fmt="gray"), 1, True),
    "ffv1_rgba": ("a.mkv", dict(codec="ffv1", pix_fmt="bgra"), 4, True),
    "ffv1_10bit": ("t.mkv", dict(codec="ffv1", pix_fmt="yuv444p10le"), 3, True),
    "vp9_alpha": ("a.webm", dict(codec="libvpx-vp9", pix_fmt="yuva420p"), 4, False),
}


@pytest.mark.parametrize("name", list(PIXEL_FORMATS))
def test_any_pixel_format_and_odd_size_comes_out_rgb(tmp_path, name):
    file_name, arguments, channels, lossless = PIXEL_FORMATS[name]
    source = moving_pattern(6, 17, 33, channels=channels)
    clip, info = read_video(write_test_video(tmp_path / file_name, source, **arguments))
    expected = np.repeat(source, 3, axis=-1) if channels == 1 else source[..., :3]
    assert clip.shape == (6, 17, 33, 3) and (info.width, info.height) == (33, 17)
    error = np.abs(clip.astype(np.int16) - expected).mean()
    assert error <= (0.5 if lossless else 6.0), error
    if lossless:  # a mean under 0.5 could still hide a block of wrong pixels
        assert np.abs(clip.astype(np.int16) - expected).max() <= 1
    np.testing.assert_array_equal(frame_numbers(clip, 6), np.arange(6))


@pytest.mark.parametrize(
    ("source", "damage"),
    [
        ("mp4_faststart", truncated_copy),
        ("mkv_h264", truncated_copy),
        ("avi_mjpeg", truncated_copy),
        ("mp4_faststart", corrupted_copy),
        ("webm_vp8", corrupted_copy),
        ("avi_mjpeg", corrupted_copy),
    ],
)
def test_damaged_file_raises_strict_and_warns_once_lenient(
    videos, tmp_path, caplog, source, damage
):
    path = damage(videos[source], tmp_path / f"damaged_{source}{videos[source][-4:]}")
    with pytest.raises(VideoDecodeError, match="damaged") as error:
        read_video(path)
    assert path in str(error.value) and "strict=False" in str(error.value)
    with caplog.at_level(logging.WARNING, logger="gan_jax.io.decode"):
        clip, _ = read_video(path, strict=False)
    assert 0 < len(clip) < T
    # What decodes comes in order. (Inter-coded frames after a lost one are predicted from the
    # wrong reference, so they may look like their predecessor: non-decreasing, not increasing.)
    numbers = frame_numbers(clip, T)
    assert numbers[0] == 0 and np.all(np.diff(numbers) >= 0), numbers
    warnings = [r for r in caplog.records if r.name == "gan_jax.io.decode"]
    assert len(warnings) == 1 and path in warnings[0].getMessage()
    assert "lost" in warnings[0].getMessage()


def test_lenient_gives_up_on_a_long_run_of_bad_packets(videos, tmp_path, caplog):
    path = videos["long_mjpeg"]
    damaged = str(tmp_path / "mostly_bad.avi")
    corrupted_copy(path, damaged, packet_indices=range(10, LONG))
    with caplog.at_level(logging.WARNING, logger="gan_jax.io.decode"):
        clip, _ = read_video(damaged, strict=False)
    np.testing.assert_array_equal(frame_numbers(clip, LONG), np.arange(10))
    assert "stopped early" in caplog.records[-1].getMessage()


def test_nothing_decodes_raises_even_lenient(videos, tmp_path):
    damaged = str(tmp_path / "all_bad.avi")
    corrupted_copy(videos["avi_mjpeg"], damaged, packet_indices=range(T))
    with pytest.raises(VideoDecodeError, match="no frame decodes"):
        read_video(damaged, strict=False)


def test_not_a_video(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(VideoDecodeError, match="missing.mp4: file not found"):
        read_video(missing)
    with pytest.raises(VideoDecodeError, match="not a regular file"):
        read_video(tmp_path)
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    for path in (text, tmp_path / "empty.mp4"):
        path.touch()
        with pytest.raises(VideoDecodeError, match=f"{path.name}: FFmpeg cannot open it"):
            read_video(path, strict=False)
        with pytest.raises(VideoDecodeError, match=path.name):
            probe_video(path)


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    path = str(tmp_path / "tone.wav")
    with av.open(path, "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(VideoDecodeError, match="tone.wav: has no video stream"):
        read_video(path)


def test_stream_selection(tmp_path):
    first = moving_pattern(4, H, W)
    second = first[::-1].copy()  # same frames, reverse order
    path = write_test_video(tmp_path / "two.mkv", first, codec="libx264", extra_streams=[second])
    clip0, info0 = read_video(path)
    clip1, info1 = read_video(path, stream=1)
    np.testing.assert_array_equal(frame_numbers(clip0, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(frame_numbers(clip1, 4), [3, 2, 1, 0])
    assert (info0.stream_index, info1.stream_index) == (0, 1)
    with pytest.raises(VideoDecodeError, match=r"stream=2 does not exist.*2 video stream"):
        read_video(path, stream=2)


SELECTIONS = [
    dict(start=0, num_frames=5),
    dict(start=7, num_frames=4, stride=2),
    dict(start=41, num_frames=3),
    dict(start=50),
    dict(start=55, num_frames=5),
    dict(start=3, num_frames=6, fps=FPS / 2),  # every other frame
    dict(start=21, num_frames=5, fps=FPS / 2),
    dict(start=40, num_frames=6, fps=FPS * 2),  # each frame twice
    dict(start=10, num_frames=3, stride=4, fps=FPS),
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=str)
@pytest.mark.parametrize("name", ["long_mp4", "long_mjpeg"])
def test_selection_matches_a_full_decode(videos, name, selection):
    full, _ = read_video(videos[name])
    clip, _ = read_video(videos[name], **selection)
    start, stride = selection["start"], selection.get("stride", 1)
    num = selection.get("num_frames", (LONG - start + stride - 1) // stride)
    # Picked timeline frames -> source frames: at fps/2 frame k is source 2k; at 2*fps, source
    # k // 2 (a tie between two source frames goes to the earlier).
    scale = selection.get("fps", FPS) / FPS
    timeline = start + stride * np.arange(num)
    source = np.floor(timeline / scale + 1e-9).astype(int)
    np.testing.assert_array_equal(clip, full[source])


def test_seeking_decodes_about_one_keyframe_interval(videos, monkeypatch):
    decoded = []
    original = decode_module._decode

    def counting_decode(*args, **kwargs):
        for frame in original(*args, **kwargs):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(decode_module, "_decode", counting_decode)
    full, _ = read_video(videos["long_mp4"])
    assert len(decoded) == LONG
    decoded.clear()
    clip, info = read_video(videos["long_mp4"], start=40, num_frames=4)
    np.testing.assert_array_equal(clip, full[40:44])
    # First frame + the keyframe interval before frame 40 + the clip + look-ahead, not 44.
    assert len(decoded) < 25, len(decoded)
    assert info.decoded_frames is None
    decoded.clear()
    read_video(videos["long_mp4"], start=40, num_frames=4, fps=FPS)
    assert len(decoded) < 25, len(decoded)


def test_asking_for_more_frames_than_exist_says_how_many(videos):
    with pytest.raises(VideoDecodeError, match=r"only 16 frames"):
        read_video(videos["mp4_h264"], num_frames=T + 1)
    with pytest.raises(VideoDecodeError, match=r"only 16 frames"):
        read_video(videos["mkv_h264"], start=10, num_frames=4, stride=2)
    with pytest.raises(VideoDecodeError, match=r"only 16 frames"):
        read_video(videos["mp4_h264"], start=T)
    with pytest.raises(VideoDecodeError, match=r"only 8 frames at 4 fps"):
        read_video(videos["mp4_h264"], fps=FPS / 2, start=4, num_frames=5)
    clip, _ = read_video(videos["mp4_h264"], fps=FPS / 2, start=4, num_frames=4)
    assert len(clip) == 4


@pytest.mark.parametrize(
    "arguments",
    [dict(start=-1), dict(num_frames=0), dict(stride=0), dict(fps=0.0), dict(start=1.5)],
    ids=str,
)
def test_bad_selection_arguments(videos, arguments):
    with pytest.raises(ValueError, match=next(iter(arguments))):
        read_video(videos["mp4_h264"], **arguments)


def test_out_of_order_frame_timestamps_are_resorted():
    # AVI with packed B-frames (XviD, as in UCF-101) gives frames in display order but their
    # timestamps shuffled: 1, 2, 4, 3, ... Frame times must come out increasing.
    frames = [SimpleNamespace(pts=pts) for pts in [1, 2, 4, 3, 5, 7, 6, 8, None, 11, 10]]
    paired = list(decode_module._with_timestamps(iter(frames), default_step=1))
    assert [frame for frame, _ in paired] == frames
    # A frame without a timestamp gets the latest one plus a step (8 + 1).
    assert [timestamp for _, timestamp in paired] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_avi_dropped_frames_are_not_damage(tmp_path):
    # Capture software writes empty chunks for dropped frames; the header still counts them.
    path = write_test_video(
        tmp_path / "drop.avi",
        moving_pattern(T, H, W),
        codec="mjpeg",
        pix_fmt="yuvj420p",
        dropped=(5, 6),
    )
    clip, info = read_video(path)  # strict, and no error
    assert info.declared_frames == T and info.decoded_frames == T - 2
    kept = [t for t in range(T) if t not in (5, 6)]
    np.testing.assert_array_equal(frame_numbers(clip, T), kept)
    # On the time line the gap is filled by the nearest frames.
    timeline, _ = read_video(path, fps=FPS)
    np.testing.assert_array_equal(
        frame_numbers(timeline, T), [0, 1, 2, 3, 4, 4, 7, 7, *range(8, T)]
    )


def test_probe_survives_a_bad_first_packet(videos, tmp_path):
    damaged = corrupted_copy(videos["avi_mjpeg"], tmp_path / "bad_start.avi", packet_indices=[0])
    assert probe_video(damaged).declared_frames == T
    with pytest.raises(VideoDecodeError, match="bad_start.avi: corrupt video data at t=0.000s"):
        read_video(damaged)
    clip, _ = read_video(damaged, strict=False)
    np.testing.assert_array_equal(frame_numbers(clip, T), np.arange(1, T))


def test_edit_list_trimmed_clip_is_not_damage(tmp_path):
    # A clip cut without re-encoding keeps the frames before the cut that later ones need, and an
    # edit list hides them: the container counts them, the decoder (rightly) does not show them.
    source = write_test_video(tmp_path / "s.mp4", moving_pattern(T, H, W), codec="libx264", gop=T)
    path = remuxed_copy(source, tmp_path / "cut.mp4", shift=3)
    clip, info = read_video(path)  # strict, and no error
    assert info.declared_frames == T and info.decoded_frames == T - 3
    np.testing.assert_array_equal(frame_numbers(clip, T), np.arange(3, T))


@pytest.mark.parametrize("extension", ["mkv", "webm"])
def test_variable_frame_rate_matroska_is_not_damage(tmp_path, extension):
    # Matroska gives every frame the track's default duration (here 125 ms, at 40-1040 ms apart),
    # so the gaps between frames are no witness of lost ones.
    codec = "libx264" if extension == "mkv" else "libvpx"
    path = write_test_video(
        tmp_path / f"vfr.{extension}",
        moving_pattern(len(VFR_PTS_MS), H, W),
        codec=codec,
        pts=VFR_PTS_MS,
        time_base=Fraction(1, 1000),
    )
    clip, info = read_video(path)
    assert len(clip) == len(VFR_PTS_MS) and info.variable_frame_rate


def test_one_frame_missing_from_a_matroska_file_is_damage(tmp_path, caplog):
    # Matroska declares no count: a block the demuxer skips (its header damaged) shows only as
    # a frame's worth of time uncovered in the middle. The muxer here writes the full duration but
    # not the dropped block, as such damage leaves it.
    source = write_test_video(
        tmp_path / "s.mkv", moving_pattern(T, H, W), codec="mjpeg", pix_fmt="yuvj420p"
    )
    path = remuxed_copy(source, tmp_path / "gap.mkv", drop=[7])
    with pytest.raises(VideoDecodeError, match=r"gap\.mkv: .*0\.125s uncovered.*about 1 frames"):
        read_video(path)
    with caplog.at_level(logging.WARNING, logger="gan_jax.io.decode"):
        clip, _ = read_video(path, strict=False)
    assert len(clip) == T - 1 and "1 frame(s) lost" in caplog.records[-1].getMessage()
