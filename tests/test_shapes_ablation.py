"""experiments/shapes_ablation.py: the cells' overrides, core pinning, the table, and the runner
(parallel workers on distinct cores, resuming from results.jsonl) with the training replaced."""

import importlib.util
import json
import pathlib
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def ablation():
    spec = importlib.util.spec_from_file_location(
        "shapes_ablation", ROOT / "experiments" / "shapes_ablation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cell_overrides(ablation):
    ns = ablation.cell_overrides("ns_r1", "off", 1.0)
    assert ns == [
        "--config.loss.name=nonsaturating",
        "--config.penalty.r1=1.0",
        "--config.penalty.r2=0.0",
        "--config.augment.policy=",
    ]
    rp = ablation.cell_overrides("rpgan", "on", 0.1)
    assert "--config.loss.name=rpgan" in rp
    assert "--config.penalty.r1=0.1" in rp and "--config.penalty.r2=0.1" in rp
    assert rp[-1] == "--config.augment.policy=color,translation,cutout"
    hinge = ablation.cell_overrides("hinge", "off", 1.0)
    assert "--config.penalty.r1=0.0" in hinge and "--config.penalty.r2=0.0" in hinge
    with pytest.raises(ValueError, match="unknown loss 'wgan'"):
        ablation.cell_overrides("wgan", "off", 1.0)


def test_pinned(ablation):
    assert ablation.pinned(["gan-jax", "train"], None) == ["gan-jax", "train"]
    assert ablation.pinned(["gan-jax", "train"], 1) == [
        "taskset",
        "--cpu-list",
        "1",
        "gan-jax",
        "train",
    ]


def _row(model, loss, augment, seed, pass_, fsd, **extra):
    return {
        "model": model,
        "loss": loss,
        "augment": augment,
        "seed": seed,
        "step": 100 + seed,
        "pass": pass_,
        "crisp": pass_,
        "off_palette": 1 - pass_,
        "fsd": fsd,
        "cpu": "test CPU",
        **extra,
    }


def test_table_mean_std_and_order(ablation, tmp_path):
    args = type("Args", (), {"budget": 180.0, "num_samples": 512, "out": tmp_path})()
    rows = [
        _row("dcgan", "hinge", "off", 0, 0.0, 30.0, cores=1, workers=2),
        _row("mocogan", "ns_r1", "off", 0, 0.8, 3.0, cores=1, workers=2),
        _row("mocogan", "ns_r1", "off", 1, 0.6, 5.0, cores=1, workers=2),
        _row("r3gan", "rpgan", "on", 0, 0.0, 20.0, cores=1, workers=2),
    ]
    table = ablation.write_table(args, rows)
    assert table == (tmp_path / "table.md").read_text()
    assert "1 core(s) per run, 2 run(s) at a time." in table
    assert "CPU: test CPU" in table
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    # Best pass first, then lowest FSD; two seeds give mean +- std, one seed the value.
    assert lines[1] == (
        "| mocogan | ns_r1 | off | 2 | 100 | 70.0 ± 10.0 | 70.0 ± 10.0 | 30.0 ± 10.0 | 4.0 ± 1.0 |"
    )
    assert lines[2].startswith("| r3gan | rpgan | on | 1 | 100 | 0.0 |")
    assert lines[3].startswith("| dcgan | hinge | off | 1 |")


def test_runner_parallel_on_distinct_cores_and_resumes(ablation, tmp_path, monkeypatch):
    """Two workers run every cell once, never two at a time on one core; a second call finds
    every cell in results.jsonl and runs none."""
    busy, seen, lock = set(), [], threading.Lock()

    def fake_cell(args, model, loss, augment, seed, core):
        with lock:
            assert core not in busy, f"core {core} given to two runs at once"
            busy.add(core)
            seen.append(core)
        time.sleep(0.01)
        with lock:
            busy.discard(core)
        return _row(model, loss, augment, seed, 0.5, 10.0, gamma=ablation.GAMMA[model])

    warmed = []
    monkeypatch.setattr(ablation, "run_cell", fake_cell)
    monkeypatch.setattr(ablation, "warm_feature_network", warmed.append)
    monkeypatch.setattr(ablation, "usable_cores", lambda: [3, 5])
    monkeypatch.setattr(ablation.shutil, "which", lambda name: "/usr/bin/" + name)
    argv = ["shapes_ablation.py", "--workers", "2", "--seeds", "0", "1", "--out", str(tmp_path)]
    argv += ["--models", "mocogan", "r3gan", "--augment", "off"]
    monkeypatch.setattr(sys, "argv", argv)
    ablation.main()

    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    cells = sorted((r["model"], r["loss"], r["augment"], r["seed"]) for r in rows)
    assert cells == sorted(
        (m, loss, "off", s)
        for m in ("mocogan", "r3gan")
        for loss in ablation.LOSSES
        for s in (0, 1)
    )
    assert set(seen) <= {3, 5} and len(seen) == 12  # the cores the affinity mask allows
    assert warmed == [tmp_path / "shapes_features"]
    assert {r["gamma"] for r in rows if r["model"] == "mocogan"} == {1.0}

    def must_not_run(*args):
        raise AssertionError("a cell already in results.jsonl ran again")

    monkeypatch.setattr(ablation, "run_cell", must_not_run)
    ablation.main()
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 12


@pytest.mark.parametrize("workers", [3, 0])
def test_runner_refuses_workers_beyond_the_usable_cores(
    ablation, tmp_path, monkeypatch, capsys, workers
):
    monkeypatch.setattr(ablation, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(
        sys, "argv", ["shapes_ablation.py", "--workers", str(workers), "--out", str(tmp_path)]
    )
    with pytest.raises(SystemExit):
        ablation.main()
    assert f"--workers {workers}: give 1 to 2, the cores this process may use (0, 1)" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "results.jsonl").exists()
