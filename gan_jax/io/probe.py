"""Probing a video file: opening a container and stream, rotation, declared frame counts and
duration, the witnesses of a cut that containers without a frame count keep (a GIF's block
structure, a Matroska file's declared size), variable frame rate detection; the metadata side of
reading, without decoding frames beyond the first."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import av
import numpy as np

from gan_jax.io.errors import VideoDecodeError, _reading

# Bound that keeps any input, however damaged, from spinning a decode loop.
_MAX_PACKETS_WITHOUT_FRAME = 512  # decoders hold back a few packets (B-frames, threads), not 512
# Some containers (AVI with packed B-frames, e.g. UCF-101's XviD) hand out frame timestamps in the
# wrong order although the frames themselves come out in display order; re-sorting timestamps over
# a small window restores them. The window only needs to exceed the longest run of B-frames.
_TIMESTAMP_REORDER_DEPTH = 4
_PROBE_PACKETS = 128  # packets whose timestamps probe_video reads to judge the frame rate
# Formats whose durations are stored in the file or read off real timestamps. Elsewhere (MPEG-TS,
# MPEG-PS, raw streams) FFmpeg may estimate the duration from the bit rate, which is no witness
# for a frame or two.
_STORED_DURATION_FORMATS = frozenset(
    {"matroska", "webm", "mov", "mp4", "avi", "gif", "ogg", "ivf", "flv"}
)


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What is known about one video stream of a file.

    Attributes:
        path: the file.
        fps: average frame rate (0.0 when the container gives none).
        declared_frames: frame count the container declares; None when it declares 0 / unknown
            (mkv, webm).
        decoded_frames: frames counted by decoding, when the call decoded the whole stream;
            otherwise None.
        duration: seconds, when the container says.
        width: display width, after rotation.
        height: display height, after rotation.
        codec: decoder name, e.g. ``"h264"``.
        rotation: 0, 90, 180 or 270: clockwise degrees the stored frames are turned to display.
        stream_index: which video stream (0 = first video stream), as passed to ``read_video``.
        variable_frame_rate: True when the frame timestamps are unevenly spaced (GIF with varying
            delays, VFR phone footage); False when even or when it could not be determined.
    """

    path: str
    fps: float
    declared_frames: int | None
    decoded_frames: int | None
    duration: float | None
    width: int
    height: int
    codec: str
    rotation: int
    stream_index: int
    variable_frame_rate: bool


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """How stored frames map to output frames: size to convert at and quarter-turns to apply."""

    stored_width: int
    stored_height: int
    rotation: int  # clockwise degrees, multiple of 90

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after rotation."""
        if self.rotation in (90, 270):
            return self.stored_height, self.stored_width
        return self.stored_width, self.stored_height


def _clockwise_rotation(frame: av.VideoFrame, video: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation of ``frame`` in degrees: 0, 90, 180 or 270.

    PyAV does not rotate frames; it reports the display matrix as ``frame.rotation`` in
    counter-clockwise degrees. Files written by old FFmpeg builds may instead carry a ``rotate``
    tag (clockwise degrees), which is used when there is no display matrix. Odd angles are
    rounded to the nearest quarter turn.
    """
    counter_clockwise = frame.rotation
    if counter_clockwise:
        degrees = -counter_clockwise
    else:
        # Matroska hands tags back upper-cased ("ROTATE").
        tags = {key.lower(): value for key, value in video.metadata.items()}
        try:
            degrees = float(tags.get("rotate", 0))
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4 * 90


@contextlib.contextmanager
def _open_video(
    path: str, stream: int
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Opens ``path`` and picks its ``stream``-th video stream; closes the file on exit."""
    if not os.path.exists(path):
        raise VideoDecodeError(
            f"{path}: file not found (relative paths resolve against {os.getcwd()}); check the path"
        )
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file; pass the path of a video file")
    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(
            f"{path}: FFmpeg cannot open it as a video ({err}); the file is not a video or is "
            "damaged beyond its header"
        ) from err
    with container:
        videos = container.streams.video
        if not videos:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise VideoDecodeError(
                f"{path}: has no video stream (streams: {kinds}); it is not a video file"
            )
        if not 0 <= stream < len(videos):
            raise VideoDecodeError(
                f"{path}: stream={stream} does not exist; the file has {len(videos)} video "
                f"stream(s), pass stream=0..{len(videos) - 1}"
            )
        video = videos[stream]
        if video.codec_context is None:
            # PyAV opens no decoder for a codec FFmpeg does not know (a damaged or exotic codec
            # tag); everything after would trip over the missing context.
            raise VideoDecodeError(
                f"{path}: FFmpeg has no decoder for video stream {stream} (unknown codec); the "
                "file is damaged or uses a codec this FFmpeg build lacks: re-encode it"
            )
        # Frame + slice threads: several times faster on HD footage, same frames out.
        video.codec_context.thread_type = "AUTO"
        yield container, video


def _packet_time(packet: av.Packet, video: av.video.stream.VideoStream) -> str:
    """Human-readable position of ``packet``, for error messages."""
    timestamp = packet.pts if packet.pts is not None else packet.dts
    if timestamp is None or video.time_base is None:
        return "an unknown position"
    return f"t={float(timestamp * video.time_base):.3f}s"


def _is_variable_rate(timestamps: list[int]) -> bool | None:
    """Whether sorted-able integer ``timestamps`` are unevenly spaced; None with fewer than 3.

    Rounding to the time base makes even spacing jitter by one tick (24 fps in milliseconds is
    41/42 ms), so spacing counts as uneven only when it varies by more than a tick and by more
    than 10%.
    """
    if len(timestamps) < 3:
        return None
    steps = np.diff(np.sort(np.asarray(timestamps, dtype=np.int64)))
    smallest, largest = int(steps.min()), int(steps.max())
    return largest - smallest > 1 and largest > 1.1 * smallest


def _indexed_variable_rate(video: av.video.stream.VideoStream) -> bool | None:
    """Frame-rate evenness from the container's sample index (mp4, mov, avi), when it lists every
    frame; None otherwise."""
    entries = video.index_entries
    if video.frames < 3 or len(entries) != video.frames:
        return None
    return _is_variable_rate([entry.timestamp for entry in entries])


def _average_fps(video: av.video.stream.VideoStream) -> float:
    """Average frame rate of ``video``; 0.0 when the container gives none."""
    if video.codec_context.name == "gif" and video.frames and video.duration and video.time_base:
        # FFmpeg's GIF demuxer estimates the rate from the first few delays only (50 fps for a
        # GIF that averages 44); frames over duration is the true average.
        return video.frames / float(video.duration * video.time_base)
    rate = video.average_rate or video.guessed_rate or video.base_rate
    return float(rate) if rate else 0.0


def _duration(container: av.container.InputContainer, video: av.video.stream.VideoStream):
    """Stream duration in seconds, else the container's, else None."""
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _declared_end(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> tuple[float | None, bool, bool]:
    """Stream time (s) where the container says the video ends.

    Taken from the stream's own start + duration, else the stream's ``DURATION`` tag (Matroska
    and WebM written by FFmpeg or mkvmerge; it survives a cut, being near the start of the file),
    else the whole file's duration (which may include longer audio).

    Returns:
        (end or None, whether it is the video stream's own end rather than the whole file's,
        whether the file stores it rather than FFmpeg estimating it).
    """
    stored = not _STORED_DURATION_FORMATS.isdisjoint(container.format.name.split(","))
    if video.duration is not None and video.time_base is not None:
        return float(((video.start_time or 0) + video.duration) * video.time_base), True, stored
    tags = {key.lower(): value for key, value in video.metadata.items()}
    tagged = _parse_clock(tags.get("duration", ""))
    if tagged is not None:
        # The end on the stream's clock, like the stream's timestamps (no start added: some
        # muxers write the length, some the end; the smaller reading never accuses a good file).
        return tagged, True, stored
    if container.duration is not None:
        end = ((container.start_time or 0) + container.duration) / av.time_base
        return end, len(container.streams) == 1, stored
    return None, False, False


def _parse_clock(text: str) -> float | None:
    """Seconds in a ``HH:MM:SS.fraction`` tag; None when it is not one."""
    parts = text.strip().split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    total = hours * 3600 + minutes * 60 + seconds
    return total if np.isfinite(total) and total > 0 else None


def _gif_images(path: str) -> tuple[int, bool]:
    """Images a GIF file holds by its block structure, and whether that structure is whole.

    A GIF declares no frame count or duration; FFmpeg counts the frames it finds, so a cut GIF
    declares just what is left. Its block structure is the witness: header, screen descriptor and
    colour table, then extension blocks (0x21) and images (0x2C), each ending in a chain of
    length-prefixed sub-blocks, then the trailer (0x3B), which the format requires. A walk that
    reaches the trailer finds the structure whole. One that runs out of bytes (a cut, even one
    between two blocks) or meets any other byte (a zeroed or overwritten range) does not.

    Returns:
        (whole images walked, whether the structure is whole).
    """
    with open(path, "rb") as file:
        data = file.read()
    size = len(data)
    if size < 13 or data[:3] != b"GIF":
        return 0, False
    position = 13 + _colour_table_bytes(data[10])
    images = 0
    while position < size:
        block = data[position]
        if block == 0x3B:
            return images, True
        if block == 0x21:
            position += 2  # introducer, label
        elif block == 0x2C:
            if position + 10 > size:
                return images, False
            # Separator, 9-byte image descriptor (flags last), local colour table, LZW code size.
            position += 10 + _colour_table_bytes(data[position + 9]) + 1
        else:
            return images, False
        while True:  # sub-blocks up to the zero-length terminator
            if position >= size:
                return images, False
            length = data[position]
            position += 1 + length
            if length == 0:
                break
        images += block == 0x2C
    return images, False


def _colour_table_bytes(flags: int) -> int:
    """Size of the colour table a GIF descriptor's ``flags`` byte announces (0 when none)."""
    return 3 * (2 << (flags & 7)) if flags & 0x80 else 0


def _matroska_cut(path: str) -> int | None:
    """Bytes missing from a Matroska / WebM file: how far the end its Segment element declares
    lies past the end of the file (0 when it does not); None when the size is unknown (a live
    recording) or the header cannot be parsed.

    Matroska declares no frame count, and a cut that loses only B-frames (stored after the
    P-frame they precede) leaves the decoded frames still reaching the declared duration; the
    Segment size in the header is a witness that survives any cut.
    """
    with open(path, "rb") as file:
        head = file.read(1024)  # EBML headers run to some 40 bytes
        size = file.seek(0, os.SEEK_END)
    position = 0
    for expected_id in (b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"):  # EBML header, Segment
        if head[position : position + 4] != expected_id:
            return None
        length, value = _ebml_size(head, position + 4)
        if length == 0:
            return None
        position += 4 + length
        if expected_id == b"\x18\x53\x80\x67":
            if value == (1 << (7 * length)) - 1:  # all ones: size unknown
                return None
            return max(0, position + value - size)
        position += value
    return None


def _ebml_size(data: bytes, position: int) -> tuple[int, int]:
    """(bytes, value) of the EBML variable-length size at ``position``; (0, 0) when invalid."""
    if position >= len(data) or not data[position]:
        return 0, 0
    length = 9 - data[position].bit_length()  # leading zeros + 1
    if position + length > len(data):
        return 0, 0
    value = data[position] & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = value << 8 | byte
    return length, value


def _make_info(
    path: str,
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    stream: int,
    geometry: _Geometry,
    *,
    decoded_frames: int | None,
    variable_frame_rate: bool | None,
) -> VideoInfo:
    width, height = geometry.display_size
    return VideoInfo(
        path=path,
        fps=_average_fps(video),
        declared_frames=video.frames or None,
        decoded_frames=decoded_frames,
        duration=_duration(container, video),
        width=width,
        height=height,
        codec=video.codec_context.name,
        rotation=geometry.rotation,
        stream_index=stream,
        variable_frame_rate=bool(variable_frame_rate),
    )


def probe_video(path: str | os.PathLike, *, stream: int = 0) -> VideoInfo:
    """Reads what a video stream is without decoding it all.

    Reads container metadata, decodes the first frame only (PyAV exposes the display rotation and
    the true frame size on decoded frames, not on streams) and reads the timestamps of up to 128
    packets, without decoding them, to judge whether the frame rate varies when the container has
    no full sample index.

    Args:
        path: video file.
        stream: which video stream, 0 = the first.

    Returns:
        VideoInfo with ``decoded_frames=None``.

    Raises:
        VideoDecodeError: missing file, not a video, no such stream, a codec FFmpeg cannot
            decode, the first frame does not decode, or any other failure of FFmpeg or PyAV on
            the file (the message names the file and the cause).
    """
    path = os.fspath(path)
    with _reading(path, "probing"):
        return _probe(path, stream)


def _probe(path: str, stream: int) -> VideoInfo:
    """probe_video without the boundary that turns backend errors into VideoDecodeError."""
    with _open_video(path, stream) as (container, video):
        variable_rate = _indexed_variable_rate(video)
        first, timestamps, window_cut = _probe_packets(
            container, video, path, want_timestamps=variable_rate is None
        )
        if variable_rate is None:
            if window_cut:
                # Decode-order timestamps near the cut may miss neighbours still to come.
                timestamps = sorted(timestamps)[:-_TIMESTAMP_REORDER_DEPTH]
            variable_rate = _is_variable_rate(timestamps)
        geometry = _Geometry(first.width, first.height, _clockwise_rotation(first, video))
        return _make_info(
            path,
            container,
            video,
            stream,
            geometry,
            decoded_frames=None,
            variable_frame_rate=variable_rate,
        )


def _probe_packets(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    path: str,
    *,
    want_timestamps: bool,
) -> tuple[av.VideoFrame, list[int], bool]:
    """Decodes the first frame and collects packet timestamps of the first ``_PROBE_PACKETS``.

    Returns:
        (first frame, packet timestamps in decode order, whether the window stopped before the
        end of the stream).
    """
    first = None
    first_error = None
    timestamps: list[int] = []
    packets_read = 0
    for packet in container.demux(video):
        packets_read += 1
        if packet.size and packet.pts is not None:
            timestamps.append(packet.pts)
        if first is None:
            # A damaged packet here is read_video's business (strict or not); probing goes on.
            try:
                frames = video.decode(packet)
            except av.FFmpegError as err:
                first_error = first_error or f"{err} at {_packet_time(packet, video)}"
                frames = []
            if frames:
                first = frames[0]
            elif packets_read >= _MAX_PACKETS_WITHOUT_FRAME:
                break
        if first is not None and (not want_timestamps or len(timestamps) >= _PROBE_PACKETS):
            return first, timestamps, True
    if first is None:
        cause = f"first error: {first_error}" if first_error else "the stream holds no frames"
        raise VideoDecodeError(
            f"{path}: no frame decodes from {packets_read} packets ({cause}); the file is empty "
            "or damaged: re-encode it"
        )
    return first, timestamps, False
