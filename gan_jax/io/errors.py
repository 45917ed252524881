"""The exceptions of video reading, shared by probing, frame selection and decoding."""

from __future__ import annotations


class VideoDecodeError(Exception):
    """A video file could not be read; the message names the file, the cause and, where one exists,
    the fix."""


class _SeekUnreliable(Exception):
    """A seek landed somewhere frame numbers cannot be trusted; decode from the start instead."""
