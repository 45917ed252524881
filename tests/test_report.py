"""The run report (`gan-jax report`, and report.html at the end of `gan-jax train`): what the
page holds, its errors, and that it renders in a real browser (headless Chromium from the
system's packages; that test skips where none is installed)."""

import base64
import io
import json
import logging
import pathlib
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from gan_jax import report, train
from gan_jax.main import main
from gan_jax.metric_writer import MetricWriter
from gan_jax.workdir import read_run_info

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
TINY = ["--config", str(CONFIGS / "tiny.py")]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chromium-headless-shell")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
# matplotlib's first line colour (tab:blue), drawn by every curve panel.
PLOT_BLUE = (31, 119, 180)


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    """The tiny run compiles the programs other modules' tiny runs compile: reuse them."""
    yield


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """The tiny config trained 4 steps, samples at 2 and 4, video_stats at 0, 2 and 4, with
    the report on."""
    workdir = tmp_path_factory.mktemp("report") / "run"
    overrides = [
        "--config.log.report=True",
        "--config.eval.every=2",
        "--config.eval.metrics=('video_stats',)",
    ]
    assert main(["train", *TINY, "--workdir", str(workdir), *overrides]) == 0
    return workdir


def _gifs(page: str) -> list[bytes]:
    return [base64.b64decode(g) for g in re.findall(r"data:image/gif;base64,([^\"]+)", page)]


def test_training_writes_a_self_contained_report(report_run):
    page = (report_run / "report.html").read_text()
    # Nothing is fetched: no source or link points elsewhere (SVG namespaces are names only).
    assert not re.search(r"""(src|href)=["']?(https?:|//)|url\((?!#)""", page)
    # Curves: losses, D accuracy, gradient norms, logits, the eval metric's panels.
    for section in ("timing", "curves", "eval", "animations", "final", "config"):
        assert f'<section id="{section}">' in page
    for title in ("Losses", "D accuracy on real and fake clips", "Gradient norms"):
        assert f'data-title="{title}"' in page
    assert "Not in this run" not in page  # every curve group has its keys
    assert "eval/video_stats" in page and page.count("<svg") >= 5
    # Animations of steps 2 and 4, each a GIF of the clip's 2 frames, captioned.
    gifs = _gifs(page)
    assert len(gifs) == 2 and "step 2</figcaption>" in page and "step 4</figcaption>" in page
    assert all(Image.open(io.BytesIO(gif)).n_frames == 2 for gif in gifs)
    assert "data:image/png;base64," in page  # the final grid
    assert "&quot;batch_size&quot;: 8" in page  # the resolved config
    # Timing and devices: this invocation, recorded in run_info.json.
    (session,) = read_run_info(report_run)
    assert (session["start_step"], session["end_step"], session["device_count"]) == (0, 4, 8)
    assert session["wall_seconds"] > 0 and "0 &rarr; 4" in page and "8 x cpu" in page.lower()


def test_report_command_and_its_errors(report_run, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["report", "--workdir", str(report_run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text().count("<svg") >= 5
    assert main(["report", "--workdir", str(tmp_path / "nope")]) == 2
    assert "nope does not exist" in capsys.readouterr().err
    assert main(["report", "--workdir", str(tmp_path)]) == 2  # a directory, not a run
    assert "not a run directory" in capsys.readouterr().err


def test_a_run_with_nothing_yet_gets_a_page_that_says_so(report_run, tmp_path):
    shutil.copy(report_run / "config.json", tmp_path / "config.json")
    page = report.write_report(tmp_path).read_text()
    for text in ("No training metrics logged yet", "No sample clips", "No run_info.json"):
        assert text in page
    assert "<svg" not in page
    # Two steps logged, losses only (no eval, no samples yet): one panel, the rest said missing.
    with MetricWriter(tmp_path) as writer:
        for step in (1, 2):
            writer.write_scalars(step, {"d/loss": 1.4 - 0.1 * step, "g/loss": 0.7 + 0.1 * step})
    page = report.write_report(tmp_path).read_text()
    assert page.count("<svg") == 1 and 'data-title="Losses"' in page
    assert "metrics: D accuracy; Gradient norms; D logits." in page  # the others are said
    for text in ("No evaluation during training", "No sample clips", "No sample grid yet"):
        assert text in page


def test_a_failing_report_is_a_warning_not_the_runs_error(tmp_path, monkeypatch, caplog):
    """What training calls at its end (after the checkpoints and samples are written)."""

    def broken(workdir, out=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_report", broken)
    with caplog.at_level(logging.WARNING):
        train._write_run_record(tmp_path, 0, 2, time.time() - 5.0, with_report=True)
    assert "Could not write the run report" in caplog.text and "No space left" in caplog.text
    (session,) = read_run_info(tmp_path)  # recorded before the report failed
    assert session["end_step"] == 2 and session["wall_seconds"] >= 5.0


def _screenshot(page: pathlib.Path, out: pathlib.Path) -> np.ndarray:
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--window-size=1200,4000", f"--screenshot={out}", page.as_uri()]
    subprocess.run(command, capture_output=True, timeout=90, check=True)
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_page_renders_in_a_browser(report_run, tmp_path):
    """A screenshot shows the plots (their line colour) and the animations: the same page with
    the GIFs' bytes broken draws far fewer pixels where the clips were."""
    shot = _screenshot(report_run / "report.html", tmp_path / "page.png")
    blue = np.all(np.abs(shot.astype(int) - PLOT_BLUE) <= 2, axis=-1)
    assert blue.sum() > 500, "no plotted line visible"
    rows_with_lines = np.flatnonzero(blue.any(axis=1))
    assert rows_with_lines.max() - rows_with_lines.min() > 800  # several panels down the page
    page = (report_run / "report.html").read_text()
    broken = re.sub(r"data:image/gif;base64,[^\"]+", "data:image/gif;base64,AAAA", page)
    (tmp_path / "broken.html").write_text(broken)
    without_clips = _screenshot(tmp_path / "broken.html", tmp_path / "broken.png")
    differs = np.any(shot != without_clips, axis=-1)
    # Two 256-pixel-wide animations: at least a 256 x 128 block each where they were drawn.
    assert differs.sum() > 2 * 256 * 128, differs.sum()
    assert json.loads((report_run / "run_info.json").read_text())["sessions"]
