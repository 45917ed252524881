"""Runs from before parts were found by name (`g.arch`, `step.loss`, ...) still sample, evaluate
and resume: their configs are upgraded, and their checkpoints restore unchanged.

`tests/data/tiny_config_before_parts_by_name.json` is the config.json that the previous layout
wrote for `experiments/configs/tiny.py`."""

import json
import pathlib

import pytest

from gan_jax import build, config, parallel, train, workdir
from gan_jax.checkpoint import Checkpointer
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
OLD_TINY = ROOT / "tests" / "data" / "tiny_config_before_parts_by_name.json"
TINY = ROOT / "experiments" / "configs" / "tiny.py"


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    yield


def _old():
    return config.load_config_json(OLD_TINY)


def test_old_configs_are_upgraded_to_todays_layout():
    old = _old()
    assert build.is_old_config(old)
    new = build.upgrade_config(old)
    assert not build.is_old_config(new)
    assert train.validate(new).sample_shape == (2, 8, 8, 3)
    assert (new.g.name, new.d.name, new.loss.name) == (
        "video_dcgan",
        "video_dcgan",
        "nonsaturating",
    )
    assert "conv_impl" not in new.g and "arch" not in new.d
    # Everything the old run set, in its new place; the rest is today's defaults.
    tiny = config.load_config_file(TINY)
    tiny.log.report = True  # tiny turns the report off; the old run predates the key (default on)
    assert config.differences(tiny.to_dict(), new.to_dict()) == []
    # WGAN-GP was a loss; it is the Wasserstein loss with the gp penalty now.
    values = old.to_dict()
    values["step"].update(loss="wgan_gp", gp_weight=10.0, r1_gamma=0.5, ema_decay=0.9)
    upgraded = build.upgrade_config(config.config_from_dict(values))
    assert upgraded.loss.name == "wasserstein"
    assert (upgraded.penalty.gp, upgraded.penalty.r1, upgraded.ema.decay) == (10.0, 0.5, 0.9)
    assert build.upgrade_config(tiny) is tiny  # today's layout is left alone


def test_an_old_run_samples_and_resumes_bitwise_like_an_uninterrupted_one(tmp_path):
    """An "old" workdir: a checkpoint saved with the old config (the state tree is unchanged),
    and the old config.json. It samples, and resumed to 4 steps it ends where a run of today
    trained 4 steps in one go ends."""
    tiny = config.load_config_file(TINY)
    reference = tmp_path / "reference"
    train.train(tiny, reference)

    first = tmp_path / "first"
    config.override(tiny, "steps", "2")
    train.train(tiny, first)
    run = build.build(tiny)
    with Checkpointer(first / workdir.CHECKPOINT_DIR) as ckpt:
        state, data_state, _ = ckpt.restore(workdir.abstract_state(run, parallel.make_mesh()))
    old_run = tmp_path / "old"
    old_cfg = _old().to_dict()
    with Checkpointer(old_run / workdir.CHECKPOINT_DIR, async_save=False) as ckpt:
        ckpt.save(2, state, data_state=data_state, config={**old_cfg, "steps": 2}, force=True)
    (old_run / "config.json").write_text(json.dumps(old_cfg))

    out = tmp_path / "drawn"
    assert main(["sample", "--workdir", str(old_run), "--num", "2", "--out", str(out)]) == 0
    assert (out / "samples.png").is_file()
    assert main(["train", "--workdir", str(old_run), "--config.steps=4"]) == 0
    resumed = {r["step"]: r for r in read_metrics(old_run)}
    expected = {r["step"]: r for r in read_metrics(reference)}
    for step in (3, 4):
        for name, value in expected[step].items():
            if not name.startswith("perf/"):
                assert resumed[step][name] == value, (step, name)
