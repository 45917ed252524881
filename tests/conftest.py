"""Test set-up: 8 fake CPU devices, strict rank promotion, unoptimised machine code (fast tests).

XLA_FLAGS must be set before jax is imported anywhere, which is why it lives here at module level.
"""

import os
import re
import sys

# XLA:CPU's LLVM back end at -O0: the tests' programs are tiny, so compiling them dominates the
# suite's time, and -O0 compiles them several times faster (a tiny G's init: 0.8 s, not 6.5 s).
# The programs (the HLO) are the same, only their machine code is less optimised; the big I3D
# tests run a few seconds slower. A level already in XLA_FLAGS is kept, e.g.
# XLA_FLAGS=--xla_backend_optimization_level=3 (XLA's default) tests the code users run. Runs
# that select the slow or gpu tests (`-m slow`: training to targets) get XLA's default level,
# written out so that pytest-xdist's workers, which inherit XLA_FLAGS, keep it too.
_INHERITED = os.environ.get("XLA_FLAGS", "").split()
_OURS = ("--xla_force_host_platform_device_count", "--xla_backend_optimization_level")


def _selects_slow_or_gpu(argv: list[str]) -> bool:
    """Whether a `-m` expression on the command line selects the slow or the gpu tests."""
    expressions = [b for a, b in zip(argv, argv[1:]) if a == "-m"]
    expressions += [a[2:] for a in argv if a.startswith("-m") and len(a) > 2]
    return any(re.search(r"(?<!not )\b(slow|gpu)\b", e) for e in expressions)


_LEVEL = 3 if _selects_slow_or_gpu(sys.argv) else 0
TEST_XLA_FLAGS = next(
    (flag for flag in _INHERITED if flag.startswith(_OURS[1])), f"{_OURS[1]}={_LEVEL}"
)


def xla_flags(devices: int) -> str:
    """XLA_FLAGS for a test's child process with `devices` fake CPU devices that compiles like
    the tests' own processes (and so shares their persistent compilation cache's entries)."""
    return f"{_OURS[0]}={devices} {TEST_XLA_FLAGS}"


os.environ["XLA_FLAGS"] = " ".join(
    [*(flag for flag in _INHERITED if not flag.startswith(_OURS)), xla_flags(8)]
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


import optax  # noqa: E402
import pytest  # noqa: E402

TINY_CLIP = (2, 8, 8, 3)  # (T, H, W, C)


def run_main_job(workdir, *overrides: str) -> dict:
    """The README's main-job command (experiments/configs/bouncing_shapes.py, with
    `--config.KEY=VALUE` overrides) run as a user runs it: a child process on one CPU device,
    not this process's 8 fake devices, which round differently and so train another generator.
    Returns the final evaluation's results (metrics.jsonl's eval/* without the prefix) and
    `step`."""
    import subprocess

    from gan_jax.metric_writer import read_metrics

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    command = [sys.executable, "-m", "gan_jax", "train", "--workdir", str(workdir)]
    command += ["--config", os.path.join(root, "experiments", "configs", "bouncing_shapes.py")]
    command += ["--config.log.progress=False", *overrides]
    run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-4000:]
    final = [row for row in read_metrics(workdir) if "eval/shapes_fd/fsd" in row][-1]
    return {key.removeprefix("eval/"): value for key, value in final.items()}


def assert_main_job_marks(results: dict, steps: int) -> None:
    """What the main job reaches, with room for other CPUs' rounding (G gliding sprites is
    measured on an Intel Xeon only; G drawing every frame met looser marks, FSD under 16 with
    no clip passing, on an AMD EPYC too): samples that move about as much as real clips, FSD
    under 6, three fifths of the clips passing the physics check, fewer than a fifth of the
    generated pixels off the palette and a tenth of the clips with a frozen object at most.
    (G gliding sprites off the walls, each clip's sprites in different colours, Intel Xeon,
    seed 0: FSD 4.5, 91.4 % passing, 11.6 % off the palette, 0.5 % frozen; seeds 1 and 2: FSD
    2.6 and 2.0, 91.4 and 88.9 %, 7.7 and 4.4 % off. Without the colour picks: 78.7-82.4 %
    passing, 5.5-11.8 % off; the rounded colours before: 61.7-63.3 % passing, 18-19 % off, and
    in bf16 65.8 %.)"""
    assert results["step"] == steps
    assert 0.5 < results["video_stats/motion_ratio"] < 2.0, results
    assert results["video_stats/mean_gap"] < 0.25, results  # the gliding sprites: 0.006
    assert results["shapes_fd/fsd"] < 6.0, results  # G drawing every frame: 6.2 to 7.1
    assert results["shapes_physics/real_pass"] == 1.0, results
    assert results["shapes_physics/fake_pass"] > 0.6, results  # rounded colours: 0.62-0.63
    assert results["shapes_physics/fake_off_palette"] < 0.2, results
    assert results["shapes_physics/fake_frozen"] < 0.1, results


def tiny_video_models(norm: str = "batch", spectral_norm: bool = False, clip=TINY_CLIP):
    """A 2-block video DCGAN small enough to compile in a few seconds."""
    from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator

    g = VideoGenerator(clip_shape=clip, z_dim=8, base_width=4, depth=2, norm=norm)
    d = VideoDiscriminator(
        clip_shape=clip, base_width=4, depth=2, norm=norm, spectral_norm=spectral_norm
    )
    return g, d


def jit_init(module, seed: int, *args):
    """`module.init` in eval mode, compiled: on CPU's convolution route a jitted init takes
    about half the time of the op-by-op one."""
    return jax.jit(lambda key: module.init(key, *args, train=False))(jax.random.key(seed))


@pytest.fixture
def tiny_gan():
    """(g, d, g_tx, d_tx) of a tiny video GAN with Adam."""
    g, d = tiny_video_models()
    return g, d, optax.adam(2e-4, b1=0.5, b2=0.999), optax.adam(2e-4, b1=0.5, b2=0.999)


@pytest.fixture(scope="module")
def persistent_compile_cache(tmp_path_factory):
    """A persistent compilation cache shared by the modules that use it (in one worker): their
    runs compile the same tiny programs, which on a loaded 2-core machine otherwise takes ~10 s
    per run. Restores the settings afterwards."""
    from jax.experimental.compilation_cache import compilation_cache

    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    saved = {name: getattr(jax.config, name) for name in names}
    jax.config.update(names[0], str(tmp_path_factory.getbasetemp() / "jax_compile_cache"))
    jax.config.update(names[1], 0.0)
    jax.config.update(names[2], 0)
    compilation_cache.reset_cache()
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


class Labelled:
    """A toy objective for tests: G and D are conditioned on the batch's `label` entry `[N]`;
    with `mse_weight`, G adds `mse_weight * mean((fake - real)^2)` as the term `mean_sq`."""

    def __init__(self, num_classes: int = 3, mse_weight: float = 0.0):
        self.num_classes = num_classes
        self.mse_weight = mse_weight

    def split(self, batch):
        return batch["label"], batch["video"]

    def g_inputs(self, cond):
        return cond

    def d_inputs(self, samples, cond):
        return samples, cond

    def g_terms(self, fake, real, cond):
        if not self.mse_weight:
            return {}
        return {"mean_sq": self.mse_weight * jax.numpy.mean(jax.numpy.square(fake - real))}

    def sample_cond(self, key, num):
        return jax.random.randint(key, (num,), 0, self.num_classes)

    def clip(self, samples, cond):
        return samples


@pytest.fixture(autouse=True)
def _no_run_report_outside_its_tests(request, monkeypatch):
    """Training writes report.html at its end (matplotlib: a second or more per run); dozens of
    tests train, none of them for the page, and the suite has a 10-minute budget. The report's
    own tests (test_report.py) keep the real one; elsewhere training's call records nothing."""
    if request.module.__name__.endswith("test_report"):
        return
    from gan_jax import report

    monkeypatch.setattr(report, "write_report", lambda workdir, out=None: workdir)
