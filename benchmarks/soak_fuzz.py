"""Soak test of video reading: many small videos, damaged at random, each read and probed.

Writes one small ``moving_pattern`` video per container/codec of ``FUZZ_SOURCES`` in
tests/video_fixtures.py (mp4/H.264, the same with the index first, AVI/MJPEG, WebM/VP8, MKV/H.264,
GIF), then makes ``num_files`` damaged copies with a seeded RNG (bit flips, truncations, zeroed
ranges, header bytes, an unknown codec tag) and reads each with ``read_video`` (strict, then
lenient) and ``probe_video``. Every read should either return every frame of the source or raise
``VideoDecodeError`` naming the file; anything else is a reader bug.

Outcomes of the strict read (the keys of ``run``'s result):

* ``decoded in full``: as many frames as the undamaged source (damage the decoder does not notice,
  e.g. in pixel data or padding, ends here).
* ``VideoDecodeError``: raised, and its message names the file.
* ``short read without error``: fewer frames than the source and no error: the bug this soak
  exists to catch.
* ``other exception (Type)``: anything else escaped. Probes and lenient reads add their escapes
  here too, as ``other exception (probe: Type)`` and ``other exception (lenient: Type)``; so does a
  ``VideoDecodeError`` whose message does not name the file (``... (unnamed)``).

Another script can run it as ``from soak_fuzz import run`` (benchmarks/ is on sys.path when a
script there runs).

Example:
    .venv/bin/python benchmarks/soak_fuzz.py --seed 0 --num-files 200
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

# tests/video_fixtures.py writes the sources and damages them, for this script and the fuzz test.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from video_fixtures import DAMAGE_KINDS, damaged_copy, write_fuzz_sources  # noqa: E402

from gan_jax.io import VideoDecodeError, probe_video, read_video  # noqa: E402

logger = logging.getLogger(__name__)

FULL, DECODE_ERROR, SHORT = "decoded in full", "VideoDecodeError", "short read without error"
OUTCOMES = (FULL, DECODE_ERROR, SHORT)


def _other(err: BaseException, what: str = "") -> str:
    return f"other exception ({what}{type(err).__name__})"


def classify_read(path: str, expected: int, *, strict: bool = True) -> tuple[str, str]:
    """Reads ``path`` and says how it went.

    Args:
        path: the (damaged) video.
        expected: frames of the undamaged source.
        strict: passed to ``read_video``.

    Returns:
        (outcome, detail): outcome is one of ``OUTCOMES`` or ``other exception (...)``; detail is
        the error message or the frame count.
    """
    name = os.path.basename(path)
    try:
        clip, _ = read_video(path, strict=strict)
    except VideoDecodeError as err:
        if name not in str(err):
            return "other exception (VideoDecodeError unnamed)", str(err)
        return DECODE_ERROR, str(err)
    except Exception as err:  # noqa: BLE001 - any other escape is what this soak counts
        return _other(err, "" if strict else "lenient: "), f"{type(err).__name__}: {err}"
    if strict and len(clip) < expected:
        return SHORT, f"{len(clip)} of {expected} frames"
    return FULL, f"{len(clip)} frames"


def classify_probe(path: str) -> tuple[str | None, str]:
    """Probes ``path``; returns (None, "") when it returns or raises a VideoDecodeError naming the
    file, else (``other exception (probe: ...)``, message)."""
    try:
        probe_video(path)
    except VideoDecodeError as err:
        if os.path.basename(path) not in str(err):
            return "other exception (probe: VideoDecodeError unnamed)", str(err)
    except Exception as err:  # noqa: BLE001
        return _other(err, "probe: "), f"{type(err).__name__}: {err}"
    return None, ""


def run(
    seed: int,
    num_files: int,
    tmpdir: str | os.PathLike,
    *,
    num_frames: int = 24,
    details: list[dict] | None = None,
) -> dict[str, int]:
    """Writes the sources, makes ``num_files`` damaged copies and counts how reading them went.

    Args:
        seed: seeds the choice of source, damage kind and damage.
        num_files: damaged files to make and read.
        tmpdir: folder for the sources and the damaged files (kept there for inspection).
        num_frames: frames of each source video (48x64 pixels).
        details: when given, gets one dict per file whose strict read did not end in ``FULL`` or
            ``DECODE_ERROR``, or whose probe or lenient read raised something else: file, source,
            kind, outcome, detail.

    Returns:
        outcome -> count of files: ``FULL``, ``DECODE_ERROR``, ``SHORT`` (always present) and one
        ``other exception (...)`` key per kind of escape seen. The strict outcomes sum to
        ``num_files``; probe and lenient escapes are counted on top.
    """
    folder = os.fspath(tmpdir)
    sources = write_fuzz_sources(folder, num_frames=num_frames, height=48, width=64)
    expected = {name: len(read_video(path)[0]) for name, path in sources.items()}
    rng = np.random.default_rng(seed)
    names = sorted(sources)
    counts: collections.Counter[str] = collections.Counter({outcome: 0 for outcome in OUTCOMES})
    for index in range(num_files):
        name = names[int(rng.integers(len(names)))]
        kind = DAMAGE_KINDS[int(rng.integers(len(DAMAGE_KINDS)))]
        extension = os.path.splitext(sources[name])[1]
        path = os.path.join(folder, f"fuzz{index:05d}_{name}_{kind}{extension}")
        damaged_copy(sources[name], path, rng, kind)
        findings = [classify_read(path, expected[name])]
        counts[findings[0][0]] += 1
        lenient = classify_read(path, expected[name], strict=False)
        probe = classify_probe(path)
        for outcome, detail in (lenient, probe):
            if outcome is not None and outcome.startswith("other"):
                counts[outcome] += 1
                findings.append((outcome, detail))
        for outcome, detail in findings:
            if outcome not in (FULL, DECODE_ERROR) and details is not None:
                details.append(
                    dict(file=path, source=name, kind=kind, outcome=outcome, detail=detail)
                )
    return dict(counts)


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-files", type=int, default=200)
    parser.add_argument("--num-frames", type=int, default=24, help="frames of each source video")
    parser.add_argument("--keep", help="folder to keep the files in (default: a temporary one)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = _parse_args(argv)
    # Lenient reads of damaged files warn once each; the table is the point here.
    logging.getLogger("gan_jax.io").setLevel(logging.ERROR)
    details: list[dict] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or scratch
        os.makedirs(folder, exist_ok=True)
        counts = run(args.seed, args.num_files, folder, num_frames=args.num_frames, details=details)
    seconds = time.perf_counter() - began
    print(f"seed {args.seed}, {args.num_files} damaged files, {seconds:.1f} s")
    width = max(len(outcome) for outcome in counts)
    for outcome, count in counts.items():
        print(f"  {outcome:<{width}}  {count:5d}")
    for finding in details:
        print(
            f"  {finding['outcome']}: {os.path.basename(finding['file'])}: "
            f"{finding['detail'][:200]}"
        )


if __name__ == "__main__":
    main()
