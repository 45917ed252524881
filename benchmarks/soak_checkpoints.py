"""Ways a checkpoint gets damaged on disk, for the reliability soak and the tests.

Each damage takes a finished step directory (`<workdir>/checkpoints/<step>`) and changes it as
a failing disk, a full disk or a careless user would. `DAMAGES` maps a short name to the
function; `run(...)` applies each to the newest of three checkpoints written by
`gan_jax.checkpoint.Checkpointer` and reports whether the restore fell back to the one before.

    python benchmarks/soak_checkpoints.py          # one table, one row per kind of damage
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import shutil
import tempfile

import numpy as np


def _array_files(step_dir: pathlib.Path) -> list[pathlib.Path]:
    """The files that hold array bytes (OCDBT data files), largest first."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    return sorted(files, key=lambda p: -p.stat().st_size)


def _xor(path: pathlib.Path, offset: int, count: int = 4) -> None:
    data = bytearray(path.read_bytes())
    offset = min(max(offset, 0), max(len(data) - count, 0))
    for i in range(offset, min(offset + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_array_file(step_dir):
    path = _array_files(step_dir)[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_middle_of_every_array_file(step_dir):
    # The silent kind: the restore succeeds unless something verifies the bytes.
    for path in _array_files(step_dir):
        _xor(path, path.stat().st_size // 2)


def flip_header_of_array_file(step_dir):
    _xor(_array_files(step_dir)[0], 0, 16)


def delete_array_file(step_dir):
    _array_files(step_dir)[0].unlink()


def empty_state_metadata(step_dir):
    (step_dir / "state" / "_METADATA").write_bytes(b"")


def garbage_state_metadata(step_dir):
    (step_dir / "state" / "_METADATA").write_bytes(b"\x00garbage{")


def empty_manifest(step_dir):
    (step_dir / "state" / "manifest.ocdbt").write_bytes(b"")


def empty_process_manifest(step_dir):
    for path in (step_dir / "state").glob("ocdbt.process_*/manifest.ocdbt"):
        path.write_bytes(b"")


def garbage_data_item(step_dir):
    (step_dir / "data" / "metadata").write_bytes(b"not json at all")


def wrong_but_valid_data_item(step_dir):
    (step_dir / "data" / "metadata").write_text('{"next_index": 12345}')


def garbage_config_item(step_dir):
    (step_dir / "config" / "metadata").write_bytes(b"\xff\xfe garbage")


def delete_state(step_dir):
    shutil.rmtree(step_dir / "state")


def delete_data_item(step_dir):
    shutil.rmtree(step_dir / "data")


def empty_checkpoint_metadata(step_dir):
    (step_dir / "_CHECKPOINT_METADATA").write_bytes(b"")


DAMAGES = {
    fn.__name__: fn
    for fn in (
        truncate_array_file,
        flip_middle_of_every_array_file,
        flip_header_of_array_file,
        delete_array_file,
        empty_state_metadata,
        garbage_state_metadata,
        empty_manifest,
        empty_process_manifest,
        garbage_data_item,
        wrong_but_valid_data_item,
        garbage_config_item,
        delete_state,
        delete_data_item,
        empty_checkpoint_metadata,
    )
}


def _state(step: int) -> dict:
    """A small state with a few shapes and dtypes, different at every step."""
    rng = np.random.default_rng(step)
    return {
        "step": np.int32(step),
        "w": rng.normal(size=(64, 64)).astype(np.float32),
        "b": rng.normal(size=(64,)).astype(np.float32),
        "nested": {"k": rng.normal(size=(3, 3, 3, 8, 16)).astype(np.float32)},
    }


def write_checkpoints(directory: pathlib.Path, steps=(10, 20, 30)) -> None:
    """Three finished checkpoints of `_state(step)` with data and config items."""
    import jax

    from gan_jax.checkpoint import Checkpointer

    with Checkpointer(directory, save_interval_steps=1, max_to_keep=10) as ckpt:
        for step in steps:
            state = jax.tree.map(jax.numpy.asarray, _state(step))
            ckpt.save(step, state, data_state={"next_index": step}, config={"steps": step})
            ckpt.wait()


def try_damage(name: str, root: pathlib.Path) -> dict:
    """Writes 3 checkpoints, damages the newest with DAMAGES[name], restores; returns the row."""
    import jax

    from gan_jax.checkpoint import Checkpointer

    directory = root / name
    write_checkpoints(directory)
    DAMAGES[name](directory / "30")
    abstract = jax.tree.map(jax.numpy.asarray, _state(0))

    def restore(step):
        config = ckpt.read_config(step=step)
        state, data, _ = ckpt.restore(abstract, step=step)
        if data != {"next_index": step} or config != {"steps": step}:
            raise AssertionError(f"step {step} restored wrong JSON items")
        return state

    row = {"damage": name}
    try:
        with Checkpointer(directory) as ckpt:
            step, state = ckpt.restore_newest_good(restore)
        pairs = zip(jax.tree.leaves(state), jax.tree.leaves(_state(step)))
        same = all(np.array_equal(a, b) for a, b in pairs)
        row["restored_step"] = step
        row["state_correct"] = same
        row["moved_aside"] = (directory / "damaged" / "30").is_dir()
    except Exception as e:  # noqa: BLE001 - the soak reports every outcome
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return row


def run(root: pathlib.Path | None = None) -> list[dict]:
    """One row per kind of damage; see `try_damage`."""
    logging.getLogger("gan_jax.checkpoint").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        return [try_damage(name, pathlib.Path(root or tmp)) for name in DAMAGES]


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    rows = run()
    print("| damage to the newest of 3 checkpoints | restored step | state correct | moved aside |")
    print("|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['damage']} | error: {row['error']} | | |")
        else:
            print(
                f"| {row['damage']} | {row['restored_step']} | {row['state_correct']} | "
                f"{row['moved_aside']} |"
            )


if __name__ == "__main__":
    main()
