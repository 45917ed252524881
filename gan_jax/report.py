"""The run report: one self-contained HTML page of a run directory (`gan-jax report`).

`write_report(workdir)` reads what training and `gan-jax eval` wrote (metrics.jsonl, samples/,
eval/, config.json, run_info.json) and writes WORKDIR/report.html: nothing in it is fetched
from elsewhere (plots are inline SVG from matplotlib, clips and grids are data URIs), so the
file can be opened anywhere or sent on its own. Sections, each left out with a sentence saying
why when the run has nothing for it:

    timing and devices      each `train` invocation: started, steps, wall time, devices
    training curves         losses of D and G (with every head), D's accuracy on real and
                            fake, gradient norms, and the other scalars the step logs
    evaluation              every `eval/*` metric over steps, one panel per value
    `gan-jax eval` results  the JSON files of eval/, as tables
    samples over training   the fixed-noise clips of each sample step as animations (GIF),
                            at most `MAX_ANIMATIONS` steps spread over the run, step below each
    final samples           the last sample step's grid (PNG)
    config                  the resolved config

Training writes the page at its end (`gan_jax.train`); `gan-jax report --workdir W` writes it
for any run, also one still training or stopped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gan_jax.io.atomic import atomic_write_text
from gan_jax.metric_writer import METRICS_FILE, read_metrics
from gan_jax.workdir import (
    CONFIG_JSON,
    EVAL_DIR,
    REPORT_HTML,
    SAMPLES_DIR,
    read_run_info,
)

logger = logging.getLogger(__name__)

# Sample steps shown as animations, spread over the run (the first and last always in):
# each GIF is 0.1-0.5 MB, and a page of a few MB still opens at once and goes by mail.
MAX_ANIMATIONS = 12
# Training-curve panels: (title, what a key must start with).
_CURVE_GROUPS = (
    ("Losses", ("d/loss", "g/loss", "d/total_loss")),
    ("D accuracy on real and fake clips", ("d/real_acc", "d/fake_acc")),
    ("Gradient norms", ("grad_norm/",)),
    ("D logits on real and fake clips", ("d/real_logit", "d/fake_logit")),
)
_STEP_FILE = re.compile(r"^step_(\d+)(.*)$")


def write_report(workdir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Writes the report of the run in `workdir`; returns its path.

    Args:
        workdir: a run directory (it must hold config.json or metrics.jsonl).
        out: where to write the page; default WORKDIR/report.html.

    Raises:
        FileNotFoundError: `workdir` holds neither a config nor metrics: not a run.
    """
    workdir = Path(workdir)
    has_config = (workdir / CONFIG_JSON).is_file()
    has_metrics = (workdir / METRICS_FILE).is_file()
    if not has_config and not has_metrics:
        raise FileNotFoundError(
            f"{workdir} holds no {CONFIG_JSON} and no {METRICS_FILE}: not a run directory "
            "(pass the --workdir that `gan-jax train` wrote)"
        )
    records = read_metrics(workdir) if has_metrics else []
    config_text = (workdir / CONFIG_JSON).read_text(encoding="utf-8") if has_config else ""
    sections = [
        _timing_section(read_run_info(workdir), records),
        _curves_section(records),
        _eval_section(records),
        _eval_files_section(workdir / EVAL_DIR),
        _animations_section(workdir / SAMPLES_DIR),
        _final_grid_section(workdir / SAMPLES_DIR),
        _config_section(config_text),
    ]
    page = _page(workdir, config_text, records, sections)
    path = Path(out) if out is not None else workdir / REPORT_HTML
    atomic_write_text(path, page)
    return path


# ---------------------------------------------------------------------------------------------
# Sections


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def _timing_section(sessions: list[dict], records: list[dict]) -> str:
    rows = []
    for s in sessions:
        steps = s.get("end_step", 0) - s.get("start_step", 0)
        wall = float(s.get("wall_seconds", 0.0))
        rate = f"{steps / wall:.2f}" if wall > 0 else "-"
        devices = f"{s.get('device_count')} x {s.get('device_kind')} ({s.get('platform')})"
        if s.get("process_count", 1) > 1:
            devices += f", {s['process_count']} processes"
        cells = [
            s.get("started", "?"),
            f"{s.get('start_step')} &rarr; {s.get('end_step')}",
            _duration(wall),
            rate,
            html.escape(devices),
            html.escape(str(s.get("processor", ""))),
            html.escape(f"jax {s.get('jax')}, Python {s.get('python')}"),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    rates = [r["perf/steps_per_sec"] for r in records if "perf/steps_per_sec" in r]
    parts = []
    if rows:
        head = "".join(
            f"<th>{h}</th>"
            for h in ("started", "steps", "wall", "steps/s", "devices", "CPU", "software")
        )
        parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
        total = sum(float(s.get("wall_seconds", 0.0)) for s in sessions)
        parts.append(f"<p>Wall time over {len(rows)} invocation(s): {_duration(total)}.</p>")
    else:
        text = (
            "No run_info.json: a `train` invocation writes it when it ends (this run is still "
            "training, failed, or predates the file)."
        )
        parts.append(_missing(text))
    if rates:
        parts.append(
            f"<p>Training speed logged by the step: median {np.median(rates):.2f} steps/s "
            f"(range {min(rates):.2f} to {max(rates):.2f}).</p>"
        )
    return _section("timing", "Timing and devices", "\n".join(parts))


def _curves_section(records: list[dict]) -> str:
    series = _series(records, lambda key: not key.startswith(("eval/", "perf/")))
    if not series:
        return _section("curves", "Training curves", _missing("No training metrics logged yet."))
    used, figures, absent = set(), [], []
    for title, prefixes in _CURVE_GROUPS:
        keys = sorted(k for k in series if k.startswith(prefixes))
        if keys:
            figures.append(_figure(title, _line_plot({k: series[k] for k in keys}, title)))
            used.update(keys)
        else:
            absent.append(title.split(" on ")[0])
    if absent:
        figures.append(_missing(f"Not in this run's metrics: {'; '.join(absent)}."))
    rest = sorted(k for k in series if k not in used)
    if rest:
        title = "Other scalars of the step"
        figures.append(_figure(title, _small_multiples({k: series[k] for k in rest})))
    return _section("curves", "Training curves", "\n".join(figures))


def _eval_section(records: list[dict]) -> str:
    series = _series(records, lambda key: key.startswith("eval/"))
    if not series:
        text = "No evaluation during training (eval.every = 0, or none has run yet)."
        return _section("eval", "Evaluation during training", _missing(text))
    figures = []
    for metric in sorted({key.split("/")[1] for key in series}):
        keys = sorted(k for k in series if k.split("/")[1] == metric)
        panels = {k.split("/", 2)[2]: series[k] for k in keys}
        heading = f"<h3>eval/{html.escape(metric)}</h3>"
        figures.append(heading + _figure(f"eval/{metric}", _small_multiples(panels)))
    return _section("eval", "Evaluation during training", "\n".join(figures))


def _eval_files_section(eval_dir: Path) -> str:
    files = sorted(eval_dir.glob("*.json")) if eval_dir.is_dir() else []
    if not files:
        return _section("eval-files", "gan-jax eval results", _missing("No `gan-jax eval` run."))
    tables = []
    for path in files:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            tables.append(_missing(f"{path.name}: unreadable ({e})"))
            continue
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_number(v))}</td></tr>"
            for k, v in result.items()
        )
        tables.append(f"<h3>{html.escape(path.name)}</h3><table>{rows}</table>")
    return _section("eval-files", "gan-jax eval results", "\n".join(tables))


def _animations_section(samples: Path) -> str:
    gifs = _by_step(samples, ".gif")
    if not gifs:
        text = "No sample clips (points runs have no animations; or no sample step yet)."
        return _section("animations", "Samples over training", _missing(text))
    shown = _spread(sorted(gifs), MAX_ANIMATIONS)
    figures = [
        f'<figure class="clip"><img alt="" src="{_data_uri(gifs[step], "image/gif")}">'
        f"<figcaption>step {step}</figcaption></figure>"
        for step in shown
    ]
    note = ""
    if len(shown) < len(gifs):
        note = f"<p>{len(shown)} of {len(gifs)} sample steps, spread over the run.</p>"
    text = (
        "<p>The same fixed noise at every step (one clip per tile, tiles in a grid); each "
        "animation loops over the clip's frames.</p>"
    )
    body = text + note + f'<div class="clips">{"".join(figures)}</div>'
    return _section("animations", "Samples over training", body)


def _final_grid_section(samples: Path) -> str:
    grids = _by_step(samples, ".png")
    if not grids:
        return _section("final", "Final samples", _missing("No sample grid yet."))
    step = max(grids)
    body = (
        f'<figure class="grid"><img alt="" width="{_display_width(grids[step])}" '
        f'src="{_data_uri(grids[step], "image/png")}">'
        f"<figcaption>step {step}: one row per clip, frames left to right</figcaption></figure>"
    )
    return _section("final", "Final samples", body)


def _config_section(config_text: str) -> str:
    if not config_text:
        return _section("config", "Config", _missing(f"No {CONFIG_JSON}."))
    try:
        config_text = json.dumps(json.loads(config_text), indent=2)
    except ValueError:
        pass  # shown as written
    return _section("config", "Config", f"<pre>{html.escape(config_text)}</pre>")


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib, imported only here: `import gan_jax` stays light)


def _line_plot(series: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for key, (steps, values) in series.items():
        # Without penalties or G terms a total equals its loss: dashed, the loss stays visible.
        style = "--" if "total" in key else "-"
        marker = "." if len(steps) < 3 else None
        ax.plot(steps, values, style, label=key, linewidth=1.2, marker=marker)
    _integer_steps(ax)
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _svg(fig)


def _small_multiples(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    plt = _pyplot()
    columns = min(4, len(series))
    rows = -(-len(series) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 1.9 * rows), squeeze=False)
    for ax, (key, (steps, values)) in zip(axes.flat, series.items()):
        ax.plot(steps, values, linewidth=1.2, marker="o" if len(steps) < 12 else None, ms=3)
        ax.set_title(key, fontsize=8)
        ax.tick_params(labelsize=7)
        _integer_steps(ax)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.tight_layout()
    return _svg(fig)


def _integer_steps(ax) -> None:
    """Step ticks at whole numbers: a short run otherwise gets ticks at step 1.5."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display; also safe in a training process without one
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline in HTML


def _figure(title: str, svg: str) -> str:
    return f'<figure class="plot" data-title="{html.escape(title)}">{svg}</figure>'


# ---------------------------------------------------------------------------------------------
# Helpers


def _series(records, wanted) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{key: (steps [K], values [K])}` of the finite numeric values of the wanted keys."""
    points: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        step = record.get("step")
        for key, value in record.items():
            if key == "step" or not wanted(key) or not isinstance(value, int | float):
                continue
            if np.isfinite(value):
                points.setdefault(key, []).append((int(step), float(value)))
    return {
        key: (np.array([s for s, _ in pts]), np.array([v for _, v in pts]))
        for key, pts in points.items()
    }


def _by_step(folder: Path, suffix: str) -> dict[int, Path]:
    """`{step: path}` of folder/step_XXXXXX<suffix> files."""
    found = {}
    if folder.is_dir():
        for path in folder.glob(f"step_*{suffix}"):
            match = _STEP_FILE.match(path.stem)
            if match and not match.group(2):
                found[int(match.group(1))] = path
    return found


def _spread(items: Sequence[int], count: int) -> list[int]:
    """At most `count` of `items`, evenly spaced, the first and last always in."""
    if len(items) <= count:
        return list(items)
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    return [items[i] for i in picks]


def _display_width(path: Path, at_least: int = 512) -> int:
    """The image's width times the smallest whole factor (at most 8) that makes it at least
    `at_least` pixels wide: small clips stay sharp (whole factors, pixelated) and visible."""
    from PIL import Image  # Pillow comes with imageio

    with Image.open(path) as image:
        width = image.width
    return width * min(8, max(1, -(-at_least // max(width, 1))))


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _page(workdir: Path, config_text: str, records: list[dict], sections: list[str]) -> str:
    try:
        cfg = json.loads(config_text) if config_text else {}
    except ValueError:
        cfg = {}
    steps = [r["step"] for r in records if "step" in r]
    summary = []
    if cfg:
        data = cfg.get("data", {})
        summary.append(
            f"data {data.get('name')}, G {cfg.get('g', {}).get('name')}, "
            f"D {cfg.get('d', {}).get('name')}, loss {cfg.get('loss', {}).get('name')}, "
            f"batch {cfg.get('batch_size')}, {cfg.get('steps')} steps planned"
        )
    if steps:
        summary.append(f"last logged step {max(steps)}")
    title = f"gan_jax run report: {workdir.resolve().name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }}
h2 {{ border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 8px 0; }}
td, th {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
figure {{ margin: 8px 0; }}
figure.plot svg {{ max-width: 100%; height: auto; }}
.clips {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure.clip {{ margin: 0; }}
figure.clip img, figure.grid img {{ image-rendering: pixelated; }}
figure.clip img {{ width: 256px; }}
figcaption {{ font-size: 13px; text-align: center; }}
pre {{ background: #f6f6f6; padding: 8px; font-size: 12px; max-height: 480px; overflow: auto; }}
.missing {{ color: #777; font-style: italic; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(str(workdir.resolve()))}: {html.escape("; ".join(summary))}</p>
{chr(10).join(sections)}
</body></html>
"""
