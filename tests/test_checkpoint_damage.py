"""A damaged newest checkpoint: restores fall back to the one before it, move the damaged one
aside, and catch flipped bytes with the checksums written at save time."""

import json
import logging
import pathlib
import sys

import jax
import numpy as np
import pytest

from gan_jax.checkpoint import (
    DAMAGED_DIR,
    CheckpointDamagedError,
    Checkpointer,
    CheckpointMismatchError,
)
from gan_jax.errors import UserError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import soak_checkpoints  # noqa: E402

# Damage that leaves what a restore reads intact: the newest checkpoint still restores exactly.
HARMLESS = {"empty_process_manifest", "empty_checkpoint_metadata"}


@pytest.mark.parametrize("damage", sorted(soak_checkpoints.DAMAGES))
def test_damaged_newest_checkpoint_falls_back_and_is_moved_aside(damage, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gan_jax.checkpoint"):
        row = soak_checkpoints.try_damage(damage, tmp_path)
    assert "error" not in row, row
    assert row["state_correct"]
    if damage in HARMLESS:
        assert row["restored_step"] == 30 and not row["moved_aside"]
    else:
        assert row["restored_step"] == 20 and row["moved_aside"]
        # One line names the damaged checkpoint and why; the files are kept, not deleted.
        (line,) = [r.getMessage() for r in caplog.records if "cannot be restored" in r.getMessage()]
        assert f"{damage}/30" in line and "\n" not in line
        assert any((tmp_path / damage / DAMAGED_DIR / "30").iterdir())
        with Checkpointer(tmp_path / damage) as ckpt:
            assert ckpt.all_steps() == [10, 20]


def _abstract():
    return jax.tree.map(jax.numpy.asarray, soak_checkpoints._state(0))


def test_a_changed_value_that_still_decodes_is_caught_by_its_checksum(tmp_path):
    soak_checkpoints.write_checkpoints(tmp_path)
    # Stand-in for a flip the storage format does not notice: the digest no longer fits.
    sums_file = tmp_path / "30" / "checksums" / "metadata"
    sums = json.loads(sums_file.read_text())
    sums["arrays"]["nested/k"]["digest"] = "00000000-0"
    sums_file.write_text(json.dumps(sums))
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointDamagedError, match="'nested/k' does not match the checksum"):
            ckpt.restore(_abstract(), step=30)
        step, _ = ckpt.restore_newest_good(lambda s: ckpt.restore(_abstract(), step=s))
    assert step == 20 and (tmp_path / DAMAGED_DIR / "30").is_dir()


def test_config_item_is_verified_too(tmp_path):
    soak_checkpoints.write_checkpoints(tmp_path)
    (tmp_path / "30" / "config" / "metadata").write_text('{"steps": 31}')  # valid JSON, wrong
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointDamagedError, match="'config' does not match"):
            ckpt.read_config(step=30)
        assert ckpt.read_config(step=20) == {"steps": 20}


def test_when_no_checkpoint_restores_nothing_is_moved(tmp_path):
    soak_checkpoints.write_checkpoints(tmp_path)
    for step in (10, 20, 30):
        soak_checkpoints.empty_state_metadata(tmp_path / str(step))
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointDamagedError, match=r"no checkpoint .* restores \(step 30: "):
            ckpt.restore_newest_good(lambda s: ckpt.restore(_abstract(), step=s))
        assert ckpt.all_steps() == [10, 20, 30]
    assert not (tmp_path / DAMAGED_DIR).exists()


def test_a_changed_architecture_is_a_user_error_not_damage(tmp_path):
    soak_checkpoints.write_checkpoints(tmp_path)
    wider = {**_abstract(), "b": jax.numpy.zeros((65,), np.float32)}
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointMismatchError, match=r"'b' has shape \(64,\)") as info:
            ckpt.restore_newest_good(lambda s: ckpt.restore(wider, step=s))
        assert isinstance(info.value, UserError)
        assert ckpt.all_steps() == [10, 20, 30]


def test_the_same_step_damaged_twice_is_kept_twice(tmp_path):
    soak_checkpoints.write_checkpoints(tmp_path)
    for _ in range(2):
        soak_checkpoints.empty_state_metadata(tmp_path / "30")
        with Checkpointer(tmp_path) as ckpt:
            step, _ = ckpt.restore_newest_good(lambda s: ckpt.restore(_abstract(), step=s))
            assert step == 20
        # A later run saves step 30 again.
        soak_checkpoints.write_checkpoints(tmp_path, steps=(30,))
    assert sorted(p.name for p in (tmp_path / DAMAGED_DIR).iterdir()) == ["30", "30.1"]
