"""The exceptions of video reading, shared by probing, frame selection and decoding, and the
boundary that turns whatever FFmpeg or PyAV raise into ``VideoDecodeError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import av


class VideoDecodeError(Exception):
    """A video file could not be read; the message names the file, the cause and, where one exists,
    the fix."""


class _SeekUnreliable(Exception):
    """A seek landed somewhere frame numbers cannot be trusted; decode from the start instead."""


# What damaged or unusual input makes FFmpeg or PyAV raise. Besides av.FFmpegError (whose
# subclasses also derive from OSError, ValueError, MemoryError, ...), PyAV raises plain Python
# errors on odd streams: AttributeError on a missing codec context, ValueError or IndexError on
# nonsense sizes or timestamps, OSError when the file changes under it. A name error or the like,
# a bug of this package, is not listed and surfaces as itself.
_BACKEND_ERRORS = (
    av.FFmpegError,
    OSError,
    EOFError,
    ValueError,
    LookupError,
    AttributeError,
    TypeError,
    ArithmeticError,
    RuntimeError,
    MemoryError,
    BufferError,
    _SeekUnreliable,
)


@contextlib.contextmanager
def _reading(path: str, what: str) -> Iterator[None]:
    """Re-raises any backend error inside as a one-line VideoDecodeError naming ``path``, the
    step (``what``) and the cause; VideoDecodeError passes through unchanged."""
    try:
        yield
    except VideoDecodeError:
        raise
    except _BACKEND_ERRORS as err:
        cause = " ".join(f"{type(err).__name__}: {err}".split())  # one line
        raise VideoDecodeError(
            f"{path}: {what} failed ({cause}); the file is damaged or not a video FFmpeg can "
            "decode: re-download or re-encode it"
        ) from err
