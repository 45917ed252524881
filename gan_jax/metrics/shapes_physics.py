"""The metric "shapes_physics": do generated bouncing-shapes clips obey the data's rules?

Real bouncing-shapes clips (``gan_jax.data.bouncing_shapes``) show 1 to K squares and discs of
distinct palette colours on black, each moving at a constant velocity and bouncing off the walls.
Each clip is checked against those rules, taken from the run's data config (``SceneRules``), and
passes when it passes all five checks:

* ``count``: the clip holds between the data's least and most objects, and every object is in
  every frame: seen, or hidden under another object (an object drawn later covers where its
  motion puts it). A colour is an object when it covers half the smallest object's area in
  some frame.
* ``colours``: no colour changes: an object hidden under another stays under it (the drawing
  order is fixed, so j hiding k in one frame and k hiding j in another is a colour switch),
  and no stray colour shows apart from the objects.
* ``areas``: each object's area over the frames where it shows whole varies little (its
  coefficient of variation times its size is at most 1.6 pixels), and its size (square side
  sqrt(A), disc diameter sqrt(4A / pi)) lies within the data's size range, 1.5 pixels slack.
* ``crisp``: at most 5 % of a clip's non-background pixels are off-palette (blurred, dimmed or
  of no palette colour; a pixel is a colour within 51/255 per channel). With
  ``data.antialias`` a coverage blend of up to two colours and black on an edge one pixel wide
  is no off-palette pixel.
* ``motion``: each object's centres follow constant velocity with wall bounces (walls at s/2
  and L - s/2, the closed form of ``bounce``, fitted per axis over every bounce pattern) to
  within 0.75 pixels RMS, and its speed lies in the data's speed range, widened by 10 % plus
  0.2 pixels per frame (a frozen object fails).

Objects overlap in real clips, and the checks read them accordingly: an object is measured by
its centroid where it borders no other colour or its pixels form a whole square or disc, by
the sides of its bounding box that no other colour touches where it is partly hidden, and not
at all where it is hidden; an object is judged on what could be measured (speed and residual
where the measured frames spread over time, so not for clips of 2 frames; area where it shows
whole twice).

Diagnostics (continuous): ``off_palette`` (share of all non-background pixels),
``empty_frames`` (share of frames with no object seen), ``objects_per_clip``, ``area_cv`` (mean
over objects), ``frozen`` (share of objects slower than 0.3 pixels per frame), ``residual``
(mean RMS distance from the fitted motion, pixels); NaN where nothing was measurable.

Calibration, on real clips only (``Thresholds``; examples 0..N-1 of ``dataset_seed`` 0):

=======================================  ============  =========================
data                                     clips         pass
=======================================  ============  =========================
main job (8x32x32, 1-2 objects, 8-12     10000         100 %
px, speed 1-2.5)
package defaults (16x64x64, 1-3, 8-16,   10000         100 %
speed 1-3)
main job, antialias                      2000          99.95 % (1 clip: crisp,
                                                       5.6 % off-palette)
package defaults, antialias              2000          100 %
=======================================  ============  =========================

The main job's examples 0..79999 pass too (one, 21606, failed the areas check until a shape
that borders another and is smaller than the data's smallest object stopped being read as
whole: ``_whole_shapes``). That rule moved the generated clips' pass rate of six main-job runs
by 0 to 0.3 points (2048 clips each); the figures recorded before it may differ by as much.

Largest values over those 20000 crisp clips, against the thresholds: area CV x size 1.18 px
(1.6); residual 0.45 px (0.75; a pixel-rounded centroid or box centre is off by at most 0.5 px
per axis); speeds 0.89 to 3.04 px/frame against 1-2.5 (allowed 0.70 to 2.95) and 1-3 (0.70 to
3.50); sizes 7.1 to 16.04 px against 8-12 / 8-16 (1.5 slack); off-palette 0 (5 %). Every
real object is found by its colour (the count misses only objects hidden nearly all along).
Clips damaged on purpose fail their own check (``tests/test_shapes_physics.py``): a 3x3 box
blur or Gaussian blur of 1 px (crisp, also with antialias; a blur of 0.6 px or less is as
soft as antialiasing and passes there), colours at 60 % (crisp), a colour switching mid-clip
(colours), an object vanishing for two frames or appearing mid-clip (count), an object grown
by 1.5x mid-clip (areas), an object frozen (motion) or jumping 6 px (motion), an empty clip
(count).

The 3-D DCGAN's EMA generator after 1500 steps (`bouncing_shapes_dcgan.py`, 512 clips): pass 0 %,
crisp 0 %, count 19 %, colours 11 %, areas 38 %, motion 41 %, off-palette 76 %, area CV 0.44,
frozen 14 %, residual 1.4 px; the main job's MoCoGAN after its 1250 steps: pass 0 %, crisp 0 %,
count 12 %, colours 7 %, areas 31 %, motion 35 %, off-palette 86 %, area CV 0.45, frozen 31 %,
residual 1.6 px; the real clips: pass 100 %, area CV 0.03, residual 0.16 px.

Speed (numpy, 2 busy CPU cores): 512 clips of 8x32x32 take about 1 s, 16x64x64 about 8 s;
with antialias (each edge pixel is solved as a blend) about 5 and 30 s, and 15 s for 512
blurry generated clips of 8x32x32.

Example:
    rules = SceneRules.from_data_config(cfg.data)           # or .from_source(BouncingShapes())
    report = analyse_clips(clips, rules)                    # [N, T, H, W, 3] in [-1, 1]
    report.passed, report.components["motion"]             # [N] bool each
    summarise(report)                                       # {"pass": ..., "crisp": ..., ...}
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from ml_collections import config_dict

from gan_jax.data.bouncing_shapes import BouncingShapes
from gan_jax.data.spec import DataSpec
from gan_jax.metrics import shapes_tracking as tracking
from gan_jax.metrics.registry import VIDEO, Metric

COMPONENTS = ("count", "colours", "areas", "crisp", "motion")
# A fill ratio area / (widest row * tallest column) above this is a square (1), below a disc
# (pi / 4 = 0.785): the midpoint.
_SQUARE_FILL = (1.0 + math.pi / 4.0) / 2.0
# A whole square fills its box (exactly when crisp; antialiasing's tolerance loses a little).
_WHOLE_SQUARE_FILL = 0.97
# Pixel rounding changes a whole shape's area by up to 20 % (a 9.5 square: 81 or 100 pixels).
_WHOLE_AREA = 0.75
# Sides of a partly hidden object are read where it shows at least this share of its area.
_SIDE_AREA = 0.25
# A whole disc's centroid is within 0.3 pixels of its centre: a gap down to -0.6 is whole.
_WHOLE_DISC_SLACK = 0.6


@dataclasses.dataclass(frozen=True)
class SceneRules:
    """What real clips obey, from the run's data (``BouncingShapes``).

    Attributes:
      height: H.
      width: W.
      num_objects: inclusive (min, max) objects per clip.
      size_range: (min, max) square side / disc diameter, pixels.
      speed_range: (min, max) speed, pixels per frame.
      antialias: edges are coverage blends (see ``render_shapes``).
    """

    height: int
    width: int
    num_objects: tuple[int, int]
    size_range: tuple[float, float]
    speed_range: tuple[float, float]
    antialias: bool = False

    @classmethod
    def from_source(cls, source: BouncingShapes) -> SceneRules:
        """The rules of a ``BouncingShapes`` source (RGB only)."""
        if source.channels != 3:
            raise ValueError(
                "shapes_physics needs RGB clips (data.channels=3): palette colours cannot be "
                f"told apart in grey, got channels={source.channels}"
            )
        return cls(
            height=source.height,
            width=source.width,
            num_objects=tuple(source.num_objects),
            size_range=tuple(source.size_range),
            speed_range=tuple(source.speed_range),
            antialias=bool(source.antialias),
        )

    @classmethod
    def from_data_config(cls, data_cfg) -> SceneRules:
        """The rules of a bouncing_shapes data config (a run's ``cfg.data``)."""
        from gan_jax.data.pipeline import make_source

        source = make_source(data_cfg)
        if not isinstance(source, BouncingShapes):
            raise ValueError(
                "shapes_physics applies to data.name='bouncing_shapes' only, got a "
                f"{type(source).__name__} source"
            )
        return cls.from_source(source)

    @property
    def min_object_area(self) -> float:
        """Area of the smallest object the data draws: a disc of the smallest size."""
        return math.pi / 4.0 * self.size_range[0] ** 2

    def max_bounces(self, num_frames: int, speed_slack: float) -> int:
        """Most bounces per axis in ``num_frames`` frames at the fastest allowed speed."""
        travel = self.speed_range[1] * (1.0 + speed_slack) * (num_frames - 1)
        span = max(min(self.height, self.width) - self.size_range[1], 1.0)
        return int(travel // span) + 1


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The checks' tolerances, calibrated on real clips (see the module docstring).

    Attributes:
      colour_tolerance: a pixel is a palette colour (or the background) when every channel is
        within this of the colour's, in [0, 1] units (51 of 255).
      blend_tolerance: the same for antialiased edge blends (antialias data only).
      visible_fraction: a colour is seen in a frame from this share of the smallest object's
        area (a few pixels: slivers of hidden objects count, single stray pixels do not).
      object_fraction: a colour is an object when it covers this share of the smallest
        object's area in some frame; smaller colours are slivers or noise.
      hidden_radius_fraction: an unseen object is hidden when other objects cover the disc of
        this radius (times its size) around where its motion puts it...
      hidden_cover: ...to this share.
      rough_reach: ...or, for an object located only roughly, a disc up to this times the
        largest size nearer to another object.
      side_weight: weight in the motion fit of a centre read from one side of a partly hidden
        object (whole frames and two-sided boxes weigh 1).
      min_time_spread: speed and residual are judged where the fitted frames spread at least
        this much in time (``BounceFit.time_spread``, frames).
      area_cv_pixels: largest coefficient of variation of an object's area over its whole
        frames, times its size: pixel rounding changes the area by a band along the outline,
        a share that falls as 1 / size.
      size_slack: sizes may lie this far (pixels) outside the data's size range.
      max_off_palette: largest share of a clip's non-background pixels that are off-palette.
      max_residual: largest RMS distance (pixels) of an object's centres from its fitted
        bounce motion.
      speed_slack: speeds may lie this share...
      speed_abs_slack: ...plus this many pixels per frame outside the data's speed range.
      frozen_speed: the ``frozen`` diagnostic counts objects slower than this.
    """

    colour_tolerance: float = 0.2
    blend_tolerance: float = 0.1
    visible_fraction: float = 0.05
    object_fraction: float = 0.5
    hidden_radius_fraction: float = 0.25
    hidden_cover: float = 0.9
    rough_reach: float = 0.5
    side_weight: float = 0.25
    min_time_spread: float = 1.5
    area_cv_pixels: float = 1.6
    size_slack: float = 1.5
    max_off_palette: float = 0.05
    max_residual: float = 0.75
    speed_slack: float = 0.1
    speed_abs_slack: float = 0.2
    frozen_speed: float = 0.3


@dataclasses.dataclass
class PhysicsReport:
    """Per-clip results of ``analyse_clips``.

    Attributes:
      components: ``{name: [N] bool}`` for each of ``COMPONENTS``.
      passed: ``[N]`` bool, every component holds.
      num_objects: ``[N]`` objects found per clip.
      off_palette_share: ``[N]`` share of non-background pixels that are off-palette.
      coloured_pixels: ``[N]`` non-background pixels.
      empty_frames: ``[N]`` frames with no visible object.
      num_frames: T.
      objects: per object found, a dict of ``[O]`` arrays: ``clip``, ``colour``, ``size``,
        ``square``, ``area_cv`` (over its whole frames; NaN: fewer than 2), ``speed`` (pixels
        per frame; NaN: not measurable), ``residual`` (RMS distance of its centres from the
        fitted bounce motion, pixels; NaN: not measurable), ``present`` (seen or hidden in
        every frame), ``whole_frames``.
    """

    components: dict[str, np.ndarray]
    passed: np.ndarray
    num_objects: np.ndarray
    off_palette_share: np.ndarray
    coloured_pixels: np.ndarray
    empty_frames: np.ndarray
    num_frames: int
    objects: dict[str, np.ndarray]


def analyse_clips(
    clips: np.ndarray,
    rules: SceneRules,
    thresholds: Thresholds = Thresholds(),
    *,
    chunk: int = 128,
) -> PhysicsReport:
    """Checks each clip against the rules of the bouncing-shapes data.

    Args:
      clips: ``[N, T, H, W, 3]`` in [-1, 1].
      rules: the data's rules (``SceneRules.from_data_config(cfg.data)``).
      thresholds: the checks' tolerances.
      chunk: clips analysed at once (bounds memory).

    Returns:
      ``PhysicsReport``.
    """
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(
            f"shapes_physics: clips must be [N, T, H, W, 3] (RGB) in [-1, 1], got shape "
            f"{clips.shape}"
        )
    if len(clips) == 0:
        raise ValueError("shapes_physics: no clips to check (N = 0)")
    if clips.shape[2:4] != (rules.height, rules.width):
        raise ValueError(
            f"shapes_physics: clips are {clips.shape[2]}x{clips.shape[3]} but the rules are "
            f"for {rules.height}x{rules.width} frames"
        )
    parts = [
        _analyse_chunk(clips[start : start + chunk], rules, thresholds, start)
        for start in range(0, len(clips), chunk)
    ]
    objects = {key: np.concatenate([p.objects[key] for p in parts]) for key in parts[0].objects}
    return PhysicsReport(
        components={
            name: np.concatenate([p.components[name] for p in parts]) for name in COMPONENTS
        },
        passed=np.concatenate([p.passed for p in parts]),
        num_objects=np.concatenate([p.num_objects for p in parts]),
        off_palette_share=np.concatenate([p.off_palette_share for p in parts]),
        coloured_pixels=np.concatenate([p.coloured_pixels for p in parts]),
        empty_frames=np.concatenate([p.empty_frames for p in parts]),
        num_frames=clips.shape[1],
        objects=objects,
    )


def _analyse_chunk(clips, rules: SceneRules, th: Thresholds, first_clip: int) -> PhysicsReport:
    """``analyse_clips`` of one chunk; object clip indices start at ``first_clip``."""
    num_clips, num_frames = clips.shape[:2]
    classes = tracking.classify_pixels(
        clips, th.colour_tolerance, blends=rules.antialias, blend_tolerance=th.blend_tolerance
    )
    measured = tracking.measure_colours(classes)
    visible = measured.area >= th.visible_fraction * rules.min_object_area  # [N, T, K]
    # An object bordering another may be partly hidden: its area and centroid are not its own
    # there. It is whole where it borders none, or where its pixels form a whole square or disc.
    touching = measured.touching.any(axis=-1)  # [N, T, K]
    whole = visible & (~touching | _whole_shapes(classes, measured, visible & touching, rules, th))
    is_object = measured.area.max(axis=1) >= th.object_fraction * rules.min_object_area
    # Slivers of an object that another hides nearly all the time are no objects, but they
    # touch what hides them; a colour seen elsewhere is noise.
    touches_object = (measured.touching & is_object[:, None, None, :]).any(axis=-1)
    stray = (visible & ~touches_object).any(axis=1) & ~is_object  # [N, K]

    objects = _Objects.of(classes.label, measured, visible, whole, is_object, rules, th)
    objects.fit(rules, th, num_frames)
    present, on_top = _presence(classes.label, objects, is_object, rules, th)
    order_broken = (on_top & on_top.transpose(0, 2, 1)).any(axis=(1, 2))

    def all_objects(per_object_ok):
        """[N] bool: the condition holds for every object of the clip."""
        failed = np.zeros(num_clips, bool)
        np.logical_or.at(failed, objects.clip, ~per_object_ok)
        return ~failed

    num_objects = is_object.sum(axis=1)
    min_objects, max_objects = rules.num_objects
    min_size, max_size = rules.size_range
    min_speed, max_speed = rules.speed_range
    low_speed = min_speed * (1.0 - th.speed_slack) - th.speed_abs_slack
    high_speed = max_speed * (1.0 + th.speed_slack) + th.speed_abs_slack
    size = objects.size
    size_ok = ~objects.size_known | (
        (size >= min_size - th.size_slack) & (size <= max_size + th.size_slack)
    )
    cv_ok = np.isnan(objects.area_cv) | (objects.area_cv * size <= th.area_cv_pixels)
    residual_ok = np.isnan(objects.residual) | (objects.residual <= th.max_residual)
    speed = objects.speed
    speed_ok = np.isnan(speed) | ((speed >= low_speed) & (speed <= high_speed))
    off_share = measured.off_palette_pixels / np.maximum(measured.coloured_pixels, 1)
    all_present = all_objects(present.all(axis=1))
    components = {
        "count": (num_objects >= min_objects) & (num_objects <= max_objects) & all_present,
        "colours": all_present & ~order_broken & ~stray.any(axis=1),
        "areas": all_objects(cv_ok & size_ok),
        "crisp": off_share <= th.max_off_palette,
        "motion": all_objects(residual_ok & speed_ok),
    }
    passed = np.logical_and.reduce([components[name] for name in COMPONENTS])
    return PhysicsReport(
        components=components,
        passed=passed,
        num_objects=num_objects,
        off_palette_share=off_share,
        coloured_pixels=measured.coloured_pixels,
        empty_frames=(~visible.any(axis=-1)).sum(axis=1),
        num_frames=num_frames,
        objects={
            "clip": objects.clip + first_clip,
            "colour": objects.colour,
            "size": size,
            "square": objects.square,
            "area_cv": objects.area_cv,
            "speed": speed,
            "residual": objects.residual,
            "present": present.all(axis=1),
            "whole_frames": objects.whole.sum(axis=1),
        },
    )


@dataclasses.dataclass
class _Objects:
    """The objects of a chunk of clips (colours with a large enough area), ``[O, ...]``."""

    clip: np.ndarray  # [O] clip index
    colour: np.ndarray  # [O] palette index
    visible: np.ndarray  # [O, T]
    whole: np.ndarray  # [O, T] visible and bordering no object drawn over it
    centroids: np.ndarray  # [O, T, 2] of the visible pixels (NaN where none)
    centres: np.ndarray  # [O, T, 2] measured centre (y, x), where `measured` says
    measured: np.ndarray  # [O, T, 2] weight of each centre coordinate in the fit (0: none)
    size: np.ndarray  # [O] square side / disc diameter
    size_known: np.ndarray  # [O] bool: measured on whole frames or own sides
    square: np.ndarray  # [O] bool
    area_cv: np.ndarray  # [O], NaN: fewer than 2 whole frames
    speed: np.ndarray | None = None  # [O], NaN: not measurable
    residual: np.ndarray | None = None  # [O] pixels, NaN: not measurable
    motion: tracking.BounceFit | None = None
    path: np.ndarray | None = None  # [O, T, 2] centres of the fitted motion, or a rough path
    located: np.ndarray | None = None  # [O] bool: `path` is the fitted motion on both axes

    @classmethod
    def of(cls, label, measured, visible, whole, is_object, rules, th) -> _Objects:
        """Where each object is and how large, from a chunk's measurements.

        A whole frame gives the centroid. A frame where it borders other colours that may hide
        part of it gives, per axis, the centre of its bounding box where both sides are its own
        (``free_edges``), half its extent from the side that is its own where only one is, and
        nothing where neither is.
        """
        clip, colour = np.nonzero(is_object)
        num_frames = visible.shape[1]

        def take(per_colour):
            return per_colour[clip, :, colour]

        area, obj_whole, obj_visible = take(measured.area), take(whole), take(visible)
        low, high = take(measured.low_edge), take(measured.high_edge)  # [O, T, 2]
        hiders = np.zeros((len(clip), num_frames, tracking.NUM_LABELS), bool)
        hiders[..., 1 : 1 + tracking.NUM_COLOURS] = measured.touching[clip, :, colour]
        free = tracking.free_edges(
            label,
            np.repeat(clip, num_frames),
            np.tile(np.arange(num_frames), len(clip)),
            hiders.reshape(-1, tracking.NUM_LABELS),
            low.reshape(-1, 2),
            high.reshape(-1, 2),
            rules.size_range[1],
        ).reshape(len(clip), num_frames, 2, 2)
        # A sliver of an object says little of where the rest is (and antialiased slivers are
        # mostly blends): sides are read where at least a quarter of the object shows.
        large = obj_visible & (area >= _SIDE_AREA * area.max(axis=1, keepdims=True))
        free &= large[..., None, None]
        box_ok = free.all(axis=-1)  # [O, T, 2]
        all_axes_whole = np.broadcast_to(obj_whole[..., None], box_ok.shape)
        centres = np.where(all_axes_whole, take(measured.centroid), (low + high) / 2.0)
        # One free side: the centre is half the object's extent along the axis from it.
        extent = high - low
        own_extent = np.where(box_ok | all_axes_whole, extent, 0).max(axis=1)  # [O, 2]
        full_extent = np.where(own_extent > 0, own_extent, own_extent.max(axis=1, keepdims=True))
        full_extent = full_extent[:, None, :]  # [O, 1, 2], 0 where never measured
        one_side = (free[..., 0] != free[..., 1]) & ~box_ok
        one_side &= ~all_axes_whole & (full_extent > 0)
        from_side = np.where(free[..., 0], low + full_extent / 2.0, high - full_extent / 2.0)
        centres = np.where(one_side, from_side, centres)
        has_whole = obj_whole.any(axis=1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: handled below
            fill = take(measured.area / (measured.widest_row * measured.tallest_column))
            whole_area = np.where(obj_whole, area, np.nan)
            usable = np.where(has_whole[:, None], obj_whole, obj_visible)
            square = np.nanmedian(np.where(usable, fill, np.nan), axis=1) > _SQUARE_FILL
            # Size from the median whole area; an object bordering another in every frame may
            # be partly hidden in all of them: its longest own extent is the best guess then.
            full_area = np.nanmedian(whole_area, axis=1)
            size_of_area = _size_of_area(full_area, square)
            seen_extent = np.where(obj_visible[..., None], extent, 0).max(axis=(1, 2))
            size_of_extent = full_extent.max(axis=(1, 2))
            size_known = has_whole | (size_of_extent > 0)
            size_of_extent = np.where(size_of_extent > 0, size_of_extent, seen_extent)
            size = np.where(has_whole, size_of_area, size_of_extent).astype(np.float64)
            area_cv = np.where(
                obj_whole.sum(axis=1) >= 2,
                np.nanstd(whole_area, axis=1) / np.nanmean(whole_area, axis=1),
                np.nan,
            )
        return cls(
            clip=clip,
            colour=colour,
            visible=obj_visible,
            whole=obj_whole,
            centroids=take(measured.centroid),
            centres=centres,
            measured=np.where(
                all_axes_whole | box_ok, 1.0, np.where(one_side, th.side_weight, 0.0)
            ),
            size=size,
            size_known=size_known,
            square=square,
            area_cv=area_cv,
        )

    def fit(self, rules: SceneRules, th: Thresholds, num_frames: int) -> None:
        """Fits the bounce motion: sets ``motion``, ``speed`` and ``residual``."""
        self.motion = tracking.fit_bounces(
            self.centres,
            self.measured,
            self.size,
            (rules.height, rules.width),
            rules.max_bounces(num_frames, th.speed_slack),
        )
        # Where an axis is measured in fewer than 2 frames (an object partly hidden all along),
        # the raw centroids of its visible parts give a rough path, good enough to tell whether
        # it is under another object where it cannot be seen.
        rough = tracking.fit_bounces(
            np.nan_to_num(self.centroids),
            self.visible[..., None].repeat(2, axis=-1).astype(np.float64),
            self.size,
            (rules.height, rules.width),
            rules.max_bounces(num_frames, th.speed_slack),
        )
        # An axis is located by two full measurements (whole frames or both sides seen).
        located = self.measured.sum(axis=1) >= 2.0  # [O, 2]
        self.path = np.where(located[:, None, :], self.motion.positions, rough.positions)
        self.located = located.all(axis=1)
        # Judged only where the frames used pin the velocity down (see Thresholds).
        spread = self.motion.time_spread.min(axis=1)
        fitted = self.motion.fitted.min(axis=1)
        judged = spread >= th.min_time_spread
        self.speed = np.where(judged, np.hypot(*self.motion.velocity.T), np.nan)
        self.residual = np.where(judged & (fitted >= 3), self.motion.rms_distance, np.nan)


def _size_of_area(area: np.ndarray, square: np.ndarray) -> np.ndarray:
    """An object's size (pixels) from its area: a square's side, else a disc's diameter."""
    return np.where(square, np.sqrt(area), np.sqrt(4.0 * area / math.pi))


def _whole_shapes(classes, measured, query, rules: SceneRules, th: Thresholds) -> np.ndarray:
    """``[N, T, K]`` bool, where ``query``: the colour's pixels form a whole square or disc.

    A whole square is a full box (fill 1) about as tall as wide; a whole disc is about as tall
    as wide and a disc around its centroid holds its pixels and no others (``disc_gap``). A
    shape partly hidden by another object is neither (unless the cut is under a pixel deep),
    nor is one smaller than the data's smallest object (less ``th.size_slack``): the part of a
    disc that shows beside the disc over it can look whole (real clips, about 1 in 30000: a
    magenta disc behind a blue one in all 8 frames, its 40 pixels read as a 6.3 px square).
    """
    extent = measured.high_edge - measured.low_edge
    round_box = np.abs(extent[..., 0] - extent[..., 1]) <= 1.0
    with np.errstate(all="ignore"):
        fill = measured.area / (measured.widest_row * measured.tallest_column)
        size = _size_of_area(measured.area, fill > _SQUARE_FILL)  # as ``_Objects.of`` reads it
    # A sliver of a hidden object may be a small whole box: a whole shape is near full size.
    query = query & (measured.area >= _WHOLE_AREA * measured.area.max(axis=1, keepdims=True))
    query = query & (size >= rules.size_range[0] - th.size_slack)
    whole = query & round_box & (fill >= _WHOLE_SQUARE_FILL)
    clip, frame, colour = np.nonzero(query & round_box & ~whole)
    gap = tracking.disc_gap(
        classes,
        clip,
        frame,
        colour + 1,
        measured.centroid[clip, frame, colour],
        int(np.ceil(rules.size_range[1] / 2.0)) + 2,
    )
    whole[clip, frame, colour] = gap >= -_WHOLE_DISC_SLACK
    return whole


def _presence(label, objects: _Objects, is_object, rules: SceneRules, th: Thresholds):
    """Whether each object is in each frame, seen or hidden under another object.

    An object not visible in a frame is hidden there when other objects cover a disc around
    where its fitted motion puts it. Where the motion is known only roughly (an object partly
    hidden all along, located by the centroids of its visible parts), the disc may also lie
    up to half the largest object size nearer to the centroid of any other object in the frame.

    Returns:
      ``(present [O, T] bool, on_top [N, K, K] bool: colour j hid colour k in some frame)``.
    """
    hidden_obj, hidden_frame = np.nonzero(~objects.visible)
    query_obj, query_frame = hidden_obj, hidden_frame
    centres = objects.path[hidden_obj, hidden_frame]
    # Rough objects: one more disc per other object visible in the frame.
    rough = ~objects.located[hidden_obj]
    pair_hidden, other = np.nonzero(
        rough[:, None]
        & (objects.clip[hidden_obj][:, None] == objects.clip[None, :])
        & objects.visible[:, hidden_frame].T
    )
    if pair_hidden.size:
        start = centres[pair_hidden]
        towards = objects.centroids[other, hidden_frame[pair_hidden]] - start
        distance = np.maximum(np.hypot(*towards.T), 1e-9)
        step = np.minimum(distance, th.rough_reach * rules.size_range[1]) / distance
        query_obj = np.concatenate([hidden_obj, hidden_obj[pair_hidden]])
        query_frame = np.concatenate([hidden_frame, hidden_frame[pair_hidden]])
        centres = np.concatenate([centres, start + step[:, None] * towards])
    clip = objects.clip[query_obj]
    covered, cover = tracking.footprint_cover(
        label,
        clip,
        query_frame,
        centres,
        np.maximum(th.hidden_radius_fraction * objects.size[query_obj], 1.0),
        objects.colour[query_obj] + 1,
    )
    cover_colour = np.maximum(cover - 1, 0)
    hidden = (covered >= th.hidden_cover) & (cover > 0) & is_object[clip, cover_colour]
    present = objects.visible.copy()
    present[query_obj[hidden], query_frame[hidden]] = True
    on_top = np.zeros((label.shape[0], *is_object.shape[1:], is_object.shape[1]), bool)
    on_top[clip[hidden], cover_colour[hidden], objects.colour[query_obj][hidden]] = True
    return present, on_top


def summarise(report: PhysicsReport, frozen_speed: float = Thresholds.frozen_speed):
    """The shares of clips that pass (``pass`` and each component) and the diagnostics.

    Returns:
      ``{name: float}``: ``pass`` and each of ``COMPONENTS`` (share of clips), ``off_palette``
      (share of all non-background pixels), ``empty_frames`` (share of frames with no object
      seen), ``objects_per_clip``, ``area_cv`` (mean over objects), ``frozen`` (share of
      objects slower than ``frozen_speed``), ``residual`` (mean over objects, pixels). The
      last three are NaN when no object has them measured.
    """
    out = {"pass": float(report.passed.mean())}
    for name in COMPONENTS:
        out[name] = float(report.components[name].mean())
    objects = report.objects
    coloured = report.coloured_pixels.sum()
    out["off_palette"] = float(
        (report.off_palette_share * report.coloured_pixels).sum() / max(coloured, 1)
    )
    out["empty_frames"] = float(
        report.empty_frames.sum() / (len(report.passed) * report.num_frames)
    )
    out["objects_per_clip"] = float(report.num_objects.mean())
    out["area_cv"] = _nanmean(objects["area_cv"])
    speed = objects["speed"]
    known = ~np.isnan(speed)
    out["frozen"] = float((speed[known] < frozen_speed).mean()) if known.any() else math.nan
    out["residual"] = _nanmean(objects["residual"])
    return out


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


# ---------------------------------------------------------------------------------------------
# The metric "shapes_physics" (gan_jax.metrics.registry)


def _shapes_physics_missing(cfg: config_dict.ConfigDict, spec: DataSpec) -> str | None:
    channels = spec.sample_shape[-1]
    if channels != 3:
        return (
            f"it needs RGB clips to tell the palette colours apart, but this run makes "
            f"{channels}-channel clips; set data.channels=3"
        )
    return None


def _shapes_physics(ctx) -> dict[str, float]:
    """Checks `eval.num_samples` generated and as many real clips against the data's rules."""
    rules = SceneRules.from_data_config(ctx.cfg.data)
    num = ctx.num_samples
    # The real clips' results do not depend on the generator: once per context.
    real = ctx.cached(
        f"shapes_physics/{num}", lambda: summarise(analyse_clips(ctx.real(num), rules))
    )
    fake = summarise(analyse_clips(ctx.fake(num), rules))
    out = {f"fake_{name}": value for name, value in fake.items()}
    out.update({f"real_{name}": value for name, value in real.items()})
    return out


METRIC = Metric(
    "shapes_physics",
    (VIDEO,),
    _shapes_physics,
    data_names=("bouncing_shapes",),
    missing=_shapes_physics_missing,
)
