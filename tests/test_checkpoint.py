"""Tests for gan_jax.checkpoint: round trips on the 8-device CPU mesh, retention, intervals,
async saves, unfinished saves and readable mismatch errors."""

import asyncio
import shutil
import threading
import time

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from orbax.checkpoint.path import atomicity

from gan_jax.checkpoint import Checkpointer


class _TrainState(flax.struct.PyTreeNode):
    params: dict
    opt_state: optax.OptState
    step: jax.Array
    stats: dict  # {} like a model without batch norm: an empty subtree must survive


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()), ("data",))


def _shardings(state, mesh):
    """Replicated everywhere except params['w'], split over the 8 devices on its first axis."""
    replicated = NamedSharding(mesh, P())
    shardings = jax.tree.map(lambda _: replicated, state)
    return shardings.replace(
        params={**shardings.params, "w": NamedSharding(mesh, P("data"))},
    )


def _init_state(seed):
    key_w, key_b = jax.random.split(jax.random.key(seed))
    params = {
        "w": jax.random.normal(key_w, (8, 4), jnp.float32),
        "b": jax.random.normal(key_b, (4,), jnp.float32).astype(jnp.bfloat16),
    }
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    opt_state = tx.init(params)
    # Make the optimizer moments non-zero so that a restore that skipped them would show.
    opt_state = jax.tree.map(lambda x: x + seed + 1 if x.ndim else x + seed, opt_state)
    return _TrainState(
        params=params, opt_state=opt_state, step=jnp.asarray(seed, jnp.int32), stats={}
    )


def _sharded_state(seed, mesh):
    state = _init_state(seed)
    return jax.device_put(state, _shardings(state, mesh))


def _abstract_state(mesh):
    """What a trainer builds before restoring: eval_shape of init plus the state shardings."""
    shapes = jax.eval_shape(lambda: _init_state(123))
    return jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
        shapes,
        _shardings(shapes, mesh),
    )


def _assert_bitwise_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        assert a.shape == e.shape and a.dtype == e.dtype
        assert np.asarray(a).tobytes() == np.asarray(e).tobytes()


def test_round_trip_into_fresh_state(tmp_path, mesh):
    saved = _sharded_state(0, mesh)
    data_state = {"epoch": 2, "index": 37, "rng": [1, 2, 3]}
    config = {"model": {"name": "dcgan", "widths": [64, 128]}, "lr": 2e-4}
    with Checkpointer(tmp_path / "ckpt", save_interval_steps=10) as ckpt:
        assert ckpt.save(10, saved, data_state=data_state, config=config)
    # A fresh Checkpointer, as after a restart, restoring over a differently initialised state.
    fresh = _sharded_state(1, mesh)
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        assert ckpt.latest_step() == 10
        state, restored_data, restored_config = ckpt.restore(_abstract_state(mesh))
        assert ckpt.read_config() == config
    assert isinstance(state, _TrainState) and state.stats == {}
    _assert_bitwise_equal(state, saved)
    assert not np.array_equal(np.asarray(fresh.params["w"]), np.asarray(state.params["w"]))
    for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(_shardings(saved, mesh))):
        assert got.sharding == want
    assert state.params["w"].sharding.spec == P("data")
    assert len(state.params["w"].addressable_shards) == 8
    assert restored_data == data_state
    assert restored_config == config


def test_plain_dict_state_with_concrete_template(tmp_path, mesh):
    replicated = NamedSharding(mesh, P())
    saved = jax.device_put({"g": {"k": jnp.arange(6.0)}, "n": jnp.asarray(3)}, replicated)
    template = jax.device_put({"g": {"k": jnp.zeros(6)}, "n": jnp.asarray(0)}, replicated)
    with Checkpointer(tmp_path, save_interval_steps=1, async_save=False) as ckpt:
        assert ckpt.save(1, saved)
        state, data_state, config = ckpt.restore(template)
    _assert_bitwise_equal(state, saved)
    assert state["g"]["k"].sharding == replicated
    assert data_state is None and config is None


def test_max_to_keep_keeps_latest(tmp_path, mesh):
    state = _sharded_state(0, mesh)
    with Checkpointer(tmp_path, save_interval_steps=1, max_to_keep=2) as ckpt:
        for step in range(1, 6):
            assert ckpt.save(step, state)
        ckpt.wait()
        assert ckpt.all_steps() == [4, 5]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["4", "5"]


def test_save_interval_and_force(tmp_path, mesh):
    state = _sharded_state(0, mesh)
    with Checkpointer(tmp_path, save_interval_steps=5, async_save=False) as ckpt:
        assert not ckpt.save(3, state)
        assert ckpt.latest_step() is None
        assert ckpt.save(5, state)
        assert not ckpt.save(7, state)
        assert ckpt.save(7, state, force=True)
        assert not ckpt.save(7, state, force=True)  # already saved: never overwritten
        assert ckpt.save(10, state)
        assert ckpt.all_steps() == [5, 7, 10]
        assert not ckpt.save(10, state, force=True)


def test_async_save_is_durable_after_wait(tmp_path, mesh, monkeypatch):
    # Hold orbax's final commit (commit file + rename) until released, to look at a save in flight.
    release = threading.Event()
    commit = atomicity.AtomicRenameTemporaryPath.finalize

    async def held_commit(self):
        await asyncio.to_thread(release.wait, 60)
        await commit(self)

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", held_commit)
    saved = _sharded_state(0, mesh)
    ckpt = Checkpointer(tmp_path, save_interval_steps=1, async_save=True)
    assert ckpt.save(1, saved, data_state={"index": 1})
    assert ckpt.latest_step() is None  # written but not committed: does not count yet
    with pytest.raises(FileNotFoundError, match="No finished checkpoint"):
        ckpt.restore(_abstract_state(mesh))
    release.set()
    ckpt.wait()
    assert ckpt.latest_step() == 1
    assert (tmp_path / "1" / "commit_success.txt").exists()
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]
    state, data_state, _ = ckpt.restore(_abstract_state(mesh))
    ckpt.close()
    ckpt.close()  # idempotent
    _assert_bitwise_equal(state, saved)
    assert data_state == {"index": 1}
    with pytest.raises(RuntimeError, match="closed"):
        ckpt.save(2, saved)


def test_unfinished_saves_are_never_restored(tmp_path, mesh):
    saved = _sharded_state(0, mesh)
    with Checkpointer(tmp_path, save_interval_steps=10, async_save=False) as ckpt:
        assert ckpt.save(10, saved)
    # What a kill leaves behind with orbax's atomic-rename protocol: the temporary directory,
    # here even with its commit file already written (killed just before the rename).
    shutil.copytree(tmp_path / "10", tmp_path / "20.orbax-checkpoint-tmp")
    # A step directory that never received its commit file (in-place writes on GCS, or a copy
    # cut off half way).
    shutil.copytree(tmp_path / "10", tmp_path / "30")
    (tmp_path / "30" / "commit_success.txt").unlink()
    shutil.rmtree(tmp_path / "30" / "state")

    with Checkpointer(tmp_path, save_interval_steps=10, async_save=False) as ckpt:
        assert ckpt.latest_step() == 10
        assert ckpt.all_steps() == [10]
        state, _, _ = ckpt.restore(_abstract_state(mesh))
        _assert_bitwise_equal(state, saved)
        for step in (20, 30):
            with pytest.raises(
                FileNotFoundError, match=rf"step {step} in .*finished steps: \[10\]"
            ):
                ckpt.restore(_abstract_state(mesh), step=step)
        # The first save of a new run clears the leftovers, then writes normally, also at a step
        # whose unfinished directory was in the way.
        assert ckpt.save(30, saved)
        assert ckpt.all_steps() == [10, 30]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name[0].isdigit()) == ["10", "30"]


def test_only_unfinished_saves_gives_clear_error(tmp_path, mesh):
    (tmp_path / "5.orbax-checkpoint-tmp" / "state").mkdir(parents=True)
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_step() is None
        with pytest.raises(FileNotFoundError, match=r"No finished checkpoint in .*5\.orbax"):
            ckpt.restore(_abstract_state(mesh))


def test_missing_directory(tmp_path, mesh):
    missing = tmp_path / "no" / "such"
    with Checkpointer(missing) as ckpt:
        assert ckpt.latest_step() is None
        with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
            ckpt.restore(_abstract_state(mesh))
    assert not missing.exists()


def test_mismatch_error_names_path_and_shapes(tmp_path, mesh):
    with Checkpointer(tmp_path, save_interval_steps=1, async_save=False) as ckpt:
        ckpt.save(1, _sharded_state(0, mesh))
        abstract = _abstract_state(mesh)
        replicated = NamedSharding(mesh, P())

        wider = abstract.replace(
            params={
                **abstract.params,
                "b": jax.ShapeDtypeStruct((5,), jnp.bfloat16, sharding=replicated),
            }
        )
        with pytest.raises(ValueError, match=r"'params/b' has shape \(4,\) bfloat16 .* but \(5,\)"):
            ckpt.restore(wider)

        extra = abstract.replace(
            params={
                **abstract.params,
                "c": jax.ShapeDtypeStruct((2,), jnp.float32, sharding=replicated),
            }
        )
        with pytest.raises(ValueError, match=r"'params/c' is in abstract_state \(\(2,\) float32\)"):
            ckpt.restore(extra)

        fewer = abstract.replace(params={"w": abstract.params["w"]})
        with pytest.raises(
            ValueError,
            match=r"'params/b' is in the checkpoint \(\(4,\) bfloat16\) but not in abstract_state",
        ):
            ckpt.restore(fewer)


def test_bad_arguments(tmp_path, mesh):
    with pytest.raises(ValueError, match="save_interval_steps"):
        Checkpointer(tmp_path, save_interval_steps=0)
    with pytest.raises(ValueError, match="max_to_keep"):
        Checkpointer(tmp_path, max_to_keep=0)
    state = _sharded_state(0, mesh)
    with Checkpointer(tmp_path, save_interval_steps=1, async_save=False) as ckpt:
        with pytest.raises(TypeError, match="data_state is not JSON-serialisable"):
            ckpt.save(1, state, data_state={"rng": np.zeros(2)})
        with pytest.raises(TypeError, match="config must be a dict"):
            ckpt.save(1, state, config=[1, 2])
        with pytest.raises(TypeError, match="step must be an integer"):
            ckpt.save(1.5, state)
        assert ckpt.latest_step() is None  # nothing half-saved by the failed calls
        ckpt.save(1, state)
        unsharded = jax.eval_shape(lambda: _init_state(0))
        with pytest.raises(ValueError, match=r"leaf \.params\['b'\] has no sharding"):
            ckpt.restore(unsharded)


@pytest.mark.slow
def test_50mb_state_save_restore_timing(tmp_path, mesh):
    """Not a timing assertion: prints save / restore seconds for a ~50 MB state (run with -s)."""
    replicated = NamedSharding(mesh, P())
    sizes = {"g": (1024, 4096), "d": (1024, 4096), "g_m": (512, 4096), "d_m": (512, 4096)}
    state = {
        name: jax.device_put(jax.random.normal(jax.random.key(i), shape), replicated)
        for i, (name, shape) in enumerate(sizes.items())
    }
    megabytes = sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20
    for async_save in (False, True):
        directory = tmp_path / f"async_{async_save}"
        with Checkpointer(directory, save_interval_steps=1, async_save=async_save) as ckpt:
            start = time.perf_counter()
            ckpt.save(1, state)
            blocking = time.perf_counter() - start
            ckpt.wait()
            durable = time.perf_counter() - start
            start = time.perf_counter()
            restored, _, _ = ckpt.restore(state)
            jax.block_until_ready(restored)
            restore_s = time.perf_counter() - start
        _assert_bitwise_equal(restored, state)
        print(
            f"\n{megabytes:.0f} MB, async_save={async_save}: save blocks {blocking:.2f} s, "
            f"durable after {durable:.2f} s, restore {restore_s:.2f} s"
        )
