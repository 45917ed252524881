"""Measurements of bouncing-shapes clips: pixel classes, colours, sides, bounce fits.

The building blocks of the ``shapes_physics`` metric (``gan_jax.metrics.shapes_physics``), all
plain numpy on clips ``[N, T, H, W, 3]`` in [-1, 1], vectorised over clips and frames:

* ``classify_pixels``: every pixel is the background, a palette colour (within a tolerance per
  channel), off-palette, or (for antialiased data) a coverage blend of up to two colours.
* ``measure_colours``: per clip, frame and palette colour: area, centroid, bounding box, widest
  row and tallest column (square or disc), which colours it borders (an object drawn over
  another hides part of it); per clip, the off-palette pixels.
* ``free_edges`` and ``disc_gap``: is a side of a colour's box the object's own, is a round
  colour a whole disc (or is part of it hidden)?
* ``fit_bounces``: per object, the constant-velocity motion with wall bounces (the data's closed
  form, ``gan_jax.data.bouncing_shapes.bounce``) that fits its centres best, and the residual.
* ``footprint_cover``: how much of a disc around a predicted centre other colours cover (is an
  object that cannot be seen hidden under another one?).

Colours are distinct within a real clip, so a palette colour is an object's identity.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np

from gan_jax.data.bouncing_shapes import PALETTE

NUM_COLOURS = len(PALETTE)
BACKGROUND = 0  # label of the black background; palette colour c is label 1 + c
OFF_PALETTE = NUM_COLOURS + 1  # label of a pixel that is no colour (nor, if allowed, a blend)
NUM_LABELS = NUM_COLOURS + 2
# Every palette channel is 0, 128 or 255 (0, 0.5, 1 in [0, 1]): a channel is snapped to the
# nearest of these levels. The largest usable tolerance is half the gap between levels, so that
# no pixel is within tolerance of two colours.
MAX_COLOUR_TOLERANCE = 0.25
# Label colours in [0, 1]: row 0 the background, row 1 + c PALETTE[c].
_LABEL_RGB = np.concatenate([np.zeros((1, 3)), PALETTE / 255.0]).astype(np.float32)
# The 8 neighbours of a pixel.
_EIGHT_NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
# The same of a pixel, as 4 one-sided offsets (each pair of neighbours is seen once).
_NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.cache
def _code_to_label() -> np.ndarray:
    """Label of each of the 27 channel-level codes (level index of R + 3 G + 9 B)."""
    table = np.full(27, OFF_PALETTE, np.uint8)
    for label, rgb in enumerate(_LABEL_RGB):
        levels = np.rint(rgb * 2).astype(np.int64)
        table[levels[0] + 3 * levels[1] + 9 * levels[2]] = label
    return table


@functools.cache
def _blend_pairs() -> tuple[np.ndarray, np.ndarray]:
    """``(P [28], Q [28])`` labels: every pair of two palette colours."""
    first, second = np.array(list(itertools.combinations(range(1, NUM_COLOURS + 1), 2))).T
    return first.astype(np.uint8), second.astype(np.uint8)


@dataclasses.dataclass
class PixelClasses:
    """What each pixel of clips ``[N, T, H, W]`` shows.

    Attributes:
      label: uint8: ``BACKGROUND`` (0), colour ``c`` as ``1 + c``, ``OFF_PALETTE``; a blend
        carries the label of its larger part.
      weight: float32 coverage of ``label``'s colour (1 for a pure colour, 0 for the
        background or off-palette).
      other_label: uint8 the second colour of a blend of two palette colours, else 0.
      other_weight: float32 its coverage, else 0.
      blend: bool, the pixel is a coverage blend (antialiased edge), not a pure colour.
    """

    label: np.ndarray
    weight: np.ndarray
    other_label: np.ndarray
    other_weight: np.ndarray
    blend: np.ndarray


def classify_pixels(
    clips: np.ndarray, tolerance: float, *, blends: bool = False, blend_tolerance: float = 0.0
) -> PixelClasses:
    """Classifies every pixel as background, palette colour, blend or off-palette.

    A pixel is a colour when each of its channels (in [0, 1]) is within ``tolerance`` of the
    colour's. With ``blends``, a pixel that is no colour but equals ``a * P + b * Q`` (the rest
    black) within ``blend_tolerance`` per channel, for palette colours P and Q, is a blend:
    antialiased rendering draws edges like that (``_best_blend``). A blend counts only on an
    edge one pixel wide (touching a pure colour; ``_blend_pass``), as antialiasing makes, not in
    the wider ramp of a blurred image.

    Args:
      clips: ``[N, T, H, W, 3]`` in [-1, 1].
      tolerance: per-channel tolerance in [0, 1] units, at most ``MAX_COLOUR_TOLERANCE``.
      blends: accept coverage blends (antialiased data).
      blend_tolerance: per-channel tolerance of a blend, in [0, 1] units.

    Returns:
      ``PixelClasses`` of shape ``[N, T, H, W]``.
    """
    if not 0 < tolerance <= MAX_COLOUR_TOLERANCE:
        raise ValueError(
            f"colour tolerance must lie in (0, {MAX_COLOUR_TOLERANCE}] so that no pixel is near "
            f"two colours, got {tolerance}"
        )
    clips = np.asarray(clips, np.float32)
    # In half-units (x + 1 in [0, 2]) the levels 0, 0.5, 1 are the integers 0, 1, 2.
    halves = clips + np.float32(1.0)
    level = np.rint(halves)
    off = np.abs(halves - level) > 2.0 * tolerance  # [..., 3]
    off = off[..., 0] | off[..., 1] | off[..., 2]
    level = np.clip(level, 0, 2).astype(np.uint8)
    label = _code_to_label()[level[..., 0] + 3 * level[..., 1] + 9 * level[..., 2]]
    label[off] = OFF_PALETTE
    weight = ((label != BACKGROUND) & (label != OFF_PALETTE)).astype(np.float32)
    other_label = np.zeros_like(label)
    other_weight = np.zeros_like(weight)
    blend = np.zeros(label.shape, bool)
    if blends:
        _unmix_orange(label, weight)
        unit = halves * np.float32(0.5)
        _classify_blends(unit, label, weight, other_label, other_weight, blend, blend_tolerance)
    return PixelClasses(label, weight, other_label, other_weight, blend)


def _unmix_orange(label: np.ndarray, weight: np.ndarray) -> None:
    """Sends orange pixels that belong to no orange object to the blends (in place).

    Orange is half red plus half yellow: an antialiased edge between a red and a yellow object
    is a line of orange pixels. An orange object has an inside (pixels whose 8 neighbours are
    all orange) that its orange pixels touch; such an edge has none.
    """
    orange = label == 1 + _palette_index((255, 128, 0))
    if not orange.any():
        return
    inside = _all_neighbours(orange)
    near_inside = ~_all_neighbours(~inside)  # inside, or next to it
    stray = orange & ~near_inside
    label[stray] = OFF_PALETTE
    weight[stray] = 0.0


def _all_neighbours(mask: np.ndarray) -> np.ndarray:
    """``[N, T, H, W]`` bool: the pixel and its 8 neighbours are all in ``mask`` (outside the
    frame counts as in)."""
    padded = np.pad(mask, [(0, 0), (0, 0), (1, 1), (1, 1)], constant_values=True)
    _, _, height, width = mask.shape
    result = mask.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            result &= padded[:, :, dy : dy + height, dx : dx + width]
    return result


def _palette_index(rgb) -> int:
    return int(np.flatnonzero((PALETTE == np.array(rgb)).all(axis=1))[0])


def _classify_blends(unit, label, weight, other_label, other_weight, blend, tolerance) -> None:
    """Turns off-palette pixels that are edge blends into blends (in place; see
    ``classify_pixels``)."""
    where = np.nonzero(label == OFF_PALETTE)
    if not where[0].size:
        return
    # Two readings. The first reads each pixel next to the pure colours around it; the second
    # reads it again next to the first's blends too: a mix is best read knowing all its
    # neighbours' colours.
    pure = np.where(weight > 0, label, BACKGROUND)
    first_reading = None
    for _ in range(2):
        main, main_weight, other, other_w = _blend_pass(unit, where, pure, first_reading, tolerance)
        first_main, first_other = pure.copy(), np.zeros_like(label)
        first_main[where] = np.where(main_weight > 0, main, BACKGROUND)
        first_other[where] = other
        first_reading = (first_main, first_other)
    accepted = main_weight > 0
    kept = tuple(axis[accepted] for axis in where)
    label[kept] = main[accepted]
    weight[kept] = main_weight[accepted]
    other_label[kept] = other[accepted]
    other_weight[kept] = other_w[accepted]
    blend[kept] = True


def _blend_pass(unit, where, pure, first_reading, tolerance):
    """Reads the pixels ``where`` as blends.

    A blend counts next to a pure colour (an edge one pixel wide), or next to a blend of two
    colours that shares a colour with it (two edges side by side: the edge of a square sticking
    out a fraction of a pixel under another), not in the wider ramp of a blurred image.

    Args:
      unit: the clips in [0, 1].
      where: the pixels to read (``np.nonzero`` of ``[N, T, H, W]``).
      pure: ``[N, T, H, W]`` labels of the pure colours (0 elsewhere).
      first_reading: None, or ``(main, other)`` labels ``[N, T, H, W]`` of a first reading.
      tolerance: per-channel tolerance of a blend.

    Returns:
      ``(main label, its weight, other label, its weight)``, each ``[M]``; weights 0 where no
      blend counts.
    """
    pad = [(0, 0), (0, 0), (1, 1), (1, 1)]
    padded_pure = np.pad(pure, pad)
    padded_reading = [] if first_reading is None else [np.pad(a, pad) for a in first_reading]
    results = []
    for start in range(0, where[0].size, _BLEND_CHUNK):
        part = tuple(axis[start : start + _BLEND_CHUNK] for axis in where)
        n, t, y, x = part
        rows = np.arange(len(n))
        # The colours among each pixel's 8 neighbours; whether one is pure; the colours of the
        # neighbouring blends of two colours.
        near = np.zeros((len(n), NUM_LABELS), bool)
        edge = np.zeros(len(n), bool)
        near_mixed = np.zeros((len(n), NUM_LABELS), bool)
        for dy, dx in _EIGHT_NEIGHBOURS:
            neighbour = padded_pure[n, t, y + 1 + dy, x + 1 + dx]
            near[rows, neighbour] = True
            edge |= neighbour != BACKGROUND
            if padded_reading:
                main = padded_reading[0][n, t, y + 1 + dy, x + 1 + dx]
                other = padded_reading[1][n, t, y + 1 + dy, x + 1 + dx]
                near[rows, main] = True
                near[rows, other] = True
                mixed = other != BACKGROUND
                near_mixed[rows[mixed], main[mixed]] = True
                near_mixed[rows[mixed], other[mixed]] = True
        near[:, BACKGROUND] = False
        # Only pixels that may count are read (most off-palette pixels of a blurred clip are
        # not next to a pure colour).
        first = np.zeros(len(n), np.uint8)
        second = np.zeros(len(n), np.uint8)
        first_weight = np.zeros(len(n), np.float32)
        second_weight = np.zeros(len(n), np.float32)
        may = np.flatnonzero(edge | near_mixed.any(axis=1))
        read = _best_blend(unit[tuple(axis[may] for axis in part)], near[may], tolerance)
        first[may], second[may], first_weight[may], second_weight[may] = read
        edge |= near_mixed[rows, first] & (first_weight > 0)
        edge |= near_mixed[rows, second] & (second_weight > 0)
        first_weight = np.where(edge, first_weight, 0.0)
        second_weight = np.where(edge, second_weight, 0.0)
        # The larger part names the pixel.
        swap = second_weight > first_weight
        main = np.where(swap, second, first)
        main_weight = np.where(swap, second_weight, first_weight)
        other = np.where(swap, first, second)
        other_w = np.where(swap, first_weight, second_weight)
        other = np.where(other_w > 0, other, BACKGROUND).astype(np.uint8)
        results.append((main, main_weight, other, np.where(other > 0, other_w, 0.0)))
    return tuple(np.concatenate(arrays) for arrays in zip(*results))


# Off-palette pixels tried as blends at once (bounds memory: 28 pairs x 4 candidates each).
_BLEND_CHUNK = 32768
# Added to the error of a candidate mix of _best_blend: per kind of mix (two colours and black,
# one colour over black (two ways), one colour over another), and per colour of the mix that no
# neighbouring pixel shows.
_MIX_PENALTY = (0.05, 0.0, 0.0, 0.01)
_UNSEEN_PENALTY = 0.05


def _best_blend(pixels: np.ndarray, near: np.ndarray, tolerance: float):
    """The mix ``a * P + b * Q`` (the rest black; ``a, b >= 0``, ``a + b <= 1``) of two palette
    colours that best explains each pixel, if within ``tolerance`` per channel.

    Antialiasing draws each object over what is there with its coverage, so an edge pixel is a
    mix of its object's colour, what lies under it and black: one colour over black, one colour
    over another, or two edges in one pixel (two colours and black). Mixes of three are
    ambiguous (white + cyan + black = red + cyan; half orange = half red + a quarter green):
    among the mixes that fit, simpler ones and ones of colours seen next to the pixel win.

    Args:
      pixels: ``[M, 3]`` in [0, 1].
      near: ``[M, NUM_LABELS]`` bool, the pure colours among each pixel's neighbours.
      tolerance: per-channel tolerance.

    Returns:
      ``(P label [M], Q label [M], a [M], b [M])``; weights 0 where nothing fits.
    """
    first, second = _blend_pairs()  # [P] labels
    p_rgb, q_rgb = _LABEL_RGB[first], _LABEL_RGB[second]  # [P, 3]
    pp, qq, pq = (p_rgb * p_rgb).sum(-1), (q_rgb * q_rgb).sum(-1), (p_rgb * q_rgb).sum(-1)
    px, qx = pixels @ p_rgb.T, pixels @ q_rgb.T  # [M, P]
    # Candidates: the free least-squares mix, and the best mix on each side of the triangle
    # (b = 0, a = 0, a + b = 1); the best feasible candidate is the constrained optimum.
    det = pp * qq - pq * pq
    free_a = (qq * px - pq * qx) / det
    free_b = (pp * qx - pq * px) / det
    feasible = (free_a >= 0) & (free_b >= 0) & (free_a + free_b <= 1)
    diff = p_rgb - q_rgb
    along = np.clip(((pixels @ diff.T) - (q_rgb * diff).sum(-1)) / (diff * diff).sum(-1), 0, 1)
    zero = np.zeros_like(px)
    candidates_a = np.stack([free_a, np.clip(px / pp, 0, 1), zero, along])  # [4, M, P]
    candidates_b = np.stack([free_b, zero, np.clip(qx / qq, 0, 1), 1.0 - along])
    # Largest channel error of each candidate, [4, M, P] (channel by channel: a reduction over
    # a last axis of 3 is slow).
    error = None
    for channel in range(3):
        model = candidates_a * p_rgb[:, channel] + candidates_b * q_rgb[:, channel]
        channel_error = np.abs(model - pixels[:, channel, None])
        error = channel_error if error is None else np.maximum(error, channel_error)
    error[0][~feasible] = np.inf
    seen_p, seen_q = near[:, first], near[:, second]  # [M, P]
    uses_p, uses_q = candidates_a > 0, candidates_b > 0
    unseen = (uses_p & ~seen_p).astype(np.float32) + (uses_q & ~seen_q)
    penalty = np.array(_MIX_PENALTY, np.float32)[:, None, None]
    score = error + penalty + np.float32(_UNSEEN_PENALTY) * unseen
    best_candidate = score.argmin(axis=0)  # [M, P]
    rows = np.arange(len(pixels))
    best_score = np.take_along_axis(score, best_candidate[None], axis=0)[0]
    pair = best_score.argmin(axis=-1)
    candidate = best_candidate[rows, pair]
    fits = error[candidate, rows, pair] <= tolerance
    a = np.where(fits, candidates_a[candidate, rows, pair], 0.0)
    b = np.where(fits, candidates_b[candidate, rows, pair], 0.0)
    return first[pair], second[pair], a, b


@dataclasses.dataclass
class ColourMeasurements:
    """Per clip, frame and palette colour (K = 8), from ``PixelClasses``.

    Attributes:
      area: ``[N, T, K]`` pixels of the colour (coverage-weighted for blends).
      centroid: ``[N, T, K, 2]`` mean ``(y, x)`` of those pixels, pixel centres at ``i + 0.5``
        (NaN where the area is 0).
      widest_row: ``[N, T, K]`` largest area in one row (a square's side, a disc's diameter).
      tallest_column: ``[N, T, K]`` largest area in one column.
      low_edge: ``[N, T, K, 2]`` ``(y, x)`` of the first row and column that hold the colour
        (pixels mostly of it, for blends).
      high_edge: ``[N, T, K, 2]`` the last row and column that hold it, plus 1: the colour's
        bounding box is ``[low_edge, high_edge)``, its centre the mean of the two.
      touching: ``[N, T, K, K]`` bool, colour j borders colour k (8-neighbours, or a blend of
        both): one may hide part of the other.
      coloured_pixels: ``[N]`` pixels that are not background, per clip.
      off_palette_pixels: ``[N]`` of those, pixels that are no colour (nor an accepted blend).
    """

    area: np.ndarray
    centroid: np.ndarray
    widest_row: np.ndarray
    tallest_column: np.ndarray
    low_edge: np.ndarray
    high_edge: np.ndarray
    touching: np.ndarray
    coloured_pixels: np.ndarray
    off_palette_pixels: np.ndarray


def measure_colours(classes: PixelClasses) -> ColourMeasurements:
    """Areas, centroids, extents and contacts of every palette colour in every frame.

    Everything comes from two ``np.bincount``s, the colour sums per row and per column of every
    frame, so the cost is a few passes over the pixels whatever the number of clips.

    Args:
      classes: ``classify_pixels`` of clips ``[N, T, H, W, 3]``.

    Returns:
      ``ColourMeasurements``.
    """
    label = classes.label
    num_clips, num_frames, height, width = label.shape
    frames = num_clips * num_frames
    frame_index = np.arange(frames, dtype=np.int64).reshape(num_clips, num_frames, 1, 1)
    layers = [(label, classes.weight)]
    if classes.blend.any():
        layers.append((classes.other_label, classes.other_weight))

    def line_sums(line_index, lines, layers):
        """[frames, lines, K]: the colours' summed weights per row (or column) of each frame."""
        total = np.zeros(frames * lines * NUM_LABELS)
        base = (frame_index * lines + line_index) * NUM_LABELS
        for which_label, which_weight in layers:
            total += np.bincount(
                (base + which_label).ravel(), weights=which_weight.ravel(), minlength=total.size
            )
        return total.reshape(frames, lines, NUM_LABELS)[:, :, 1 : 1 + NUM_COLOURS]

    row_index = np.arange(height, dtype=np.int64)[:, None]
    col_index = np.arange(width, dtype=np.int64)[None, :]
    row_sums = line_sums(row_index, height, layers)
    col_sums = line_sums(col_index, width, layers)
    # The box holds the pixels that are mostly the colour: the blends that mix it into other
    # colours' edges (or mistake a mix of three for it) do not stretch it.
    core_rows, core_cols = row_sums, col_sums
    if len(layers) > 1:
        core = [(label, (classes.weight >= 0.5).astype(np.float64))]
        core_rows = line_sums(row_index, height, core)
        core_cols = line_sums(col_index, width, core)
    area = row_sums.sum(axis=1)  # [frames, K]
    row_centres = np.arange(height, dtype=np.float64)[None, :, None] + 0.5
    col_centres = np.arange(width, dtype=np.float64)[None, :, None] + 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.stack(
            [
                (row_sums * row_centres).sum(axis=1) / area,
                (col_sums * col_centres).sum(axis=1) / area,
            ],
            axis=-1,
        )
    low_y, high_y = _extent(core_rows)
    low_x, high_x = _extent(core_cols)

    shape = (num_clips, num_frames, NUM_COLOURS)
    return ColourMeasurements(
        area=area.reshape(shape),
        centroid=centroid.reshape(*shape, 2),
        widest_row=row_sums.max(axis=1).reshape(shape),
        tallest_column=col_sums.max(axis=1).reshape(shape),
        low_edge=np.stack([low_y, low_x], axis=-1).reshape(*shape, 2),
        high_edge=np.stack([high_y, high_x], axis=-1).reshape(*shape, 2),
        touching=_touching(classes),
        coloured_pixels=(label != BACKGROUND).sum(axis=(1, 2, 3)),
        off_palette_pixels=(label == OFF_PALETTE).sum(axis=(1, 2, 3)),
    )


def _extent(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) edges ``[frames, K]`` of the rows (or columns) where a colour has pixels, from
    its sums per row ``[frames, H, K]``: ``low`` = first row, ``high`` = last row + 1 (0, 0
    where it has none)."""
    present = sums > 0
    size = sums.shape[1]
    low = np.argmax(present, axis=1)
    high = size - np.argmax(present[:, ::-1], axis=1)
    some = present.any(axis=1)
    return np.where(some, low, 0).astype(np.float64), np.where(some, high, 0).astype(np.float64)


@functools.cache
def _contact_pairs() -> np.ndarray:
    """``[NUM_LABELS ** 2]`` bool: label pair ``a * NUM_LABELS + b`` is two different colours."""
    first, second = np.divmod(np.arange(NUM_LABELS**2), NUM_LABELS)
    colour = lambda label: (label != BACKGROUND) & (label != OFF_PALETTE)  # noqa: E731
    return colour(first) & colour(second) & (first != second)


def _touching(classes: PixelClasses) -> np.ndarray:
    """``[N, T, K, K]`` bool: colours j and k are 8-neighbours somewhere, or blend in a pixel."""
    label = classes.label
    num_clips, num_frames, height, width = label.shape
    touching = np.zeros((num_clips * num_frames, NUM_LABELS * NUM_LABELS), bool)

    def add(first, second):
        pair = first * np.uint8(NUM_LABELS) + second  # [N, T, h, w], a new contiguous array
        # Few pixels border another colour: find them before indexing.
        flat = np.flatnonzero(_contact_pairs()[pair])
        touching[flat // (pair.shape[2] * pair.shape[3]), pair.reshape(-1)[flat]] = True

    for dy, dx in _NEIGHBOUR_SHIFTS:
        y0, y1 = 0, height - dy
        x0, x1 = max(0, -dx), width - max(0, dx)
        add(label[:, :, y0:y1, x0:x1], label[:, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx])
    if classes.blend.any():
        add(label, classes.other_label)
    touching = touching.reshape(num_clips, num_frames, NUM_LABELS, NUM_LABELS)
    touching |= touching.transpose(0, 1, 3, 2)
    return touching[:, :, 1 : 1 + NUM_COLOURS, 1 : 1 + NUM_COLOURS]


# ---------------------------------------------------------------------------------------------
# Constant velocity with wall bounces


@functools.cache
def bounce_patterns(num_frames: int, max_bounces: int) -> tuple[np.ndarray, np.ndarray]:
    """Every way an object may bounce along one axis in ``num_frames`` frames.

    A pattern says after which frames the object hits a wall and which wall it hits first (the
    walls then alternate). Frame t's segment is the number of bounces before it.

    Args:
      num_frames: T.
      max_bounces: most bounces per axis.

    Returns:
      ``(segment [P, T] int, first_wall [P] int)``: +1 if the first wall is the high one, -1 the
      low one; pattern 0 has no bounce.
    """
    segments, first_walls = [np.zeros(num_frames, np.int64)], [1]
    for bounces in range(1, min(max_bounces, num_frames - 1) + 1):
        for after in itertools.combinations(range(num_frames - 1), bounces):
            segment = (np.arange(num_frames)[:, None] > np.array(after)[None, :]).sum(-1)
            for wall in (1, -1):
                segments.append(segment)
                first_walls.append(wall)
    return np.stack(segments), np.array(first_walls)


def fold(unfolded: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Positions between walls ``low`` and ``high`` of free positions (a triangle wave), as in
    ``gan_jax.data.bouncing_shapes.bounce``."""
    span = np.maximum(high - low, 1e-6)
    phase = np.mod(unfolded - low, 2.0 * span)
    return low + np.where(phase >= span, 2.0 * span - phase, phase)


@dataclasses.dataclass
class BounceFit:
    """Best constant-velocity motion with wall bounces, per object.

    Attributes:
      velocity: ``[O, 2]`` pixels per frame ``(vy, vx)`` at frame 0.
      positions: ``[O, T, 2]`` the fitted motion's centres in every frame (also where the
        object was not used for the fit: hidden frames get a prediction).
      squared_error: ``[O]`` weighted sum over frames and both axes of squared differences
        between measured centres and the fitted motion.
      fitted: ``[O, 2]`` frames the fit used, per axis.
      time_spread: ``[O, 2]`` ``sqrt(sum (t - mean t)^2)`` over those frames, per axis: a
        velocity fitted to positions with error e has error about ``e / time_spread``.
    """

    velocity: np.ndarray
    positions: np.ndarray
    squared_error: np.ndarray
    fitted: np.ndarray
    time_spread: np.ndarray

    @property
    def rms_distance(self) -> np.ndarray:
        """``[O]`` root mean squared distance (pixels) between measured centres and the fit,
        as if both axes were measured in every fitted frame; NaN without fitted frames."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(2.0 * self.squared_error / self.fitted.sum(axis=1))


def fit_bounces(
    centres: np.ndarray,
    weights: np.ndarray,
    sizes: np.ndarray,
    frame_size: tuple[int, int],
    max_bounces: int,
    *,
    chunk: int = 128,
) -> BounceFit:
    """Fits ``p(t) = fold(start + velocity * t)`` per object and axis, walls at ``s/2`` and
    ``L - s/2``.

    Each axis is fitted on its own (bounces off the two axes' walls are independent). The
    triangle wave is not linear in (start, velocity), but for a given bounce pattern (which
    frames come after which bounce) reflecting the positions about the walls (unfolding) makes
    the motion a line: every pattern is fitted by weighted least squares, the fit's residual is
    measured with the true fold (so that a pattern inconsistent with the line it gives scores
    badly) and the best pattern wins.

    Args:
      centres: ``[O, T, 2]`` measured centres ``(y, x)``; entries of weight 0 are ignored
        (NaN allowed there).
      weights: ``[O, T, 2]`` 1 where an axis of a frame is to be fitted, 0 elsewhere.
      sizes: ``[O]`` object size (square side, disc diameter) that sets the walls.
      frame_size: ``(H, W)``.
      max_bounces: most bounces per axis to try.
      chunk: objects per vectorised step (bounds memory: chunk * patterns * T).

    Returns:
      ``BounceFit``; an axis with fewer than 2 fitted frames gets velocity 0 there and the mean
      of its centres as position.
    """
    centres = np.asarray(centres, np.float64)
    weights = np.asarray(weights, np.float64)
    sizes = np.asarray(sizes, np.float64)
    num_objects, num_frames, _ = centres.shape
    segment, first_wall = bounce_patterns(num_frames, max_bounces)
    velocity = np.zeros((num_objects, 2))
    positions = np.zeros((num_objects, num_frames, 2))
    squared_error = np.zeros(num_objects)
    for start in range(0, num_objects, chunk):
        part = slice(start, min(start + chunk, num_objects))
        for axis in range(2):
            fitted = _fit_axis(
                np.where(weights[part, :, axis] > 0, centres[part, :, axis], 0.0),
                weights[part, :, axis],
                sizes[part] / 2.0,
                float(frame_size[axis]) - sizes[part] / 2.0,
                segment,
                first_wall,
            )
            velocity[part, axis], positions[part, :, axis], error = fitted
            squared_error[part] += error
    times = np.arange(num_frames, dtype=np.float64)[None, :, None]
    total = np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    mean_time = (weights * times).sum(axis=1, keepdims=True) / total
    time_spread = np.sqrt((weights * (times - mean_time) ** 2).sum(axis=1))
    return BounceFit(velocity, positions, squared_error, (weights > 0).sum(axis=1), time_spread)


def _fit_axis(points, weights, low, high, segment, first_wall):
    """One axis of ``fit_bounces``: points, weights ``[O, T]``; low, high ``[O]``."""
    num_frames = points.shape[1]
    times = np.arange(num_frames, dtype=np.float64)
    low, high = low[:, None, None], high[:, None, None]  # [O, 1, 1]
    span = np.maximum(high - low, 1e-6)
    even = (segment % 2 == 0)[None]  # [1, P, T]
    up = (first_wall > 0)[None, :, None]  # [1, P, 1]
    m = segment[None].astype(np.float64)
    # Unfolded position u = sign * p + offset (see bounce_patterns; the walls alternate).
    offset_up = np.where(even, m * span, 2.0 * high + (m - 1.0) * span)
    offset_down = np.where(even, -m * span, 2.0 * low - (m - 1.0) * span)
    offset = np.where(up, offset_up, offset_down)
    unfolded = np.where(even, 1.0, -1.0) * points[:, None, :] + offset  # [O, P, T]
    w = weights[:, None, :]
    total = w.sum(-1)
    mean_t = (w * times).sum(-1) / np.maximum(total, 1e-12)
    mean_u = (w * unfolded).sum(-1) / np.maximum(total, 1e-12)
    centred_t = times - mean_t[..., None]
    spread = (w * centred_t**2).sum(-1)
    slope = np.where(
        spread > 1e-12,
        (w * centred_t * (unfolded - mean_u[..., None])).sum(-1) / np.maximum(spread, 1e-12),
        0.0,
    )
    intercept = mean_u - slope * mean_t
    model = fold(intercept[..., None] + slope[..., None] * times, low, high)  # [O, P, T]
    error = (w * (model - points[:, None, :]) ** 2).sum(-1)  # [O, P]
    best = error.argmin(-1)
    rows = np.arange(len(best))
    return slope[rows, best], model[rows, best], error[rows, best]


def free_edges(
    label: np.ndarray,
    clip: np.ndarray,
    frame: np.ndarray,
    hiders: np.ndarray,
    low_edge: np.ndarray,
    high_edge: np.ndarray,
    max_size: float,
) -> np.ndarray:
    """Whether each side of a colour's bounding box is its object's own edge.

    Another object drawn on top can hide a side of an object; then the row (or column) just
    outside the visible box shows that other object where the hidden part lies, anywhere the
    object may reach along the line: from the box's far side minus ``max_size`` to its near
    side plus ``max_size`` (a sliver may show only a corner of the object). A side is free when
    that stretch holds no colour that may hide the object (background, off-palette pixels and
    the frame's border hide nothing).

    Args:
      label: ``PixelClasses.label`` ``[N, T, H, W]``.
      clip: ``[I]`` clip index of each query.
      frame: ``[I]`` frame index.
      hiders: ``[I, NUM_LABELS]`` bool, the labels that may hide the object.
      low_edge: ``[I, 2]`` first row and column of its box (``ColourMeasurements.low_edge``).
      high_edge: ``[I, 2]`` last row and column plus 1.
      max_size: the largest object size (pixels).

    Returns:
      ``[I, 2, 2]`` bool: ``[axis (y, x), side (low, high)]``.
    """
    _, _, height, width = label.shape
    low = low_edge.astype(np.int64)
    high = high_edge.astype(np.int64)
    free = np.ones((len(clip), 2, 2), bool)
    for axis, (along, size) in enumerate(((width, height), (height, width))):
        span = np.arange(along)[None, :]
        reach = int(np.ceil(max_size))
        inside_span = (span >= high[:, 1 - axis, None] - reach) & (
            span < low[:, 1 - axis, None] + reach
        )
        for side, line in enumerate((low[:, axis] - 1, high[:, axis])):
            in_frame = (line >= 0) & (line < size)
            line = np.clip(line, 0, size - 1)
            if axis == 0:
                seen = label[clip[:, None], frame[:, None], line[:, None], span]
            else:
                seen = label[clip[:, None], frame[:, None], span, line[:, None]]
            hidden = np.take_along_axis(hiders, seen.astype(np.int64), axis=1)
            free[:, axis, side] = ~in_frame | ~(hidden & inside_span).any(axis=1)
    return free


def disc_gap(
    classes: PixelClasses,
    clip: np.ndarray,
    frame: np.ndarray,
    colour_label: np.ndarray,
    centre: np.ndarray,
    reach: int,
) -> np.ndarray:
    """How cleanly a disc around ``centre`` separates a colour's pixels from the rest.

    For a whole pixelised disc, every pixel of the colour is nearer its centre than every other
    pixel: the gap ``(nearest other pixel) - (farthest own pixel)`` is positive, or slightly
    negative when ``centre`` (a centroid) is a little off. A disc partly hidden by another
    object has pixels of that object inside it: a negative gap of about the depth of the cut.
    A pixel is the colour's own when it is mostly that colour (coverage >= 1/2).

    Args:
      classes: ``classify_pixels`` of the clips.
      clip: ``[I]`` clip index of each query.
      frame: ``[I]`` frame index.
      colour_label: ``[I]`` the colour's label (1 + palette index).
      centre: ``[I, 2]`` centre ``(y, x)`` (the centroid).
      reach: pixels looked at around the centre (at least the largest radius + 2).

    Returns:
      ``[I]`` the gap, pixels (+inf where no other pixel lies within ``reach``).
    """
    _, _, height, width = classes.label.shape
    offsets = np.arange(-reach, reach + 1)
    ys = np.floor(centre[:, 0]).astype(np.int64)[:, None, None] + offsets[None, :, None]
    xs = np.floor(centre[:, 1]).astype(np.int64)[:, None, None] + offsets[None, None, :]
    distance = np.hypot(ys + 0.5 - centre[:, 0, None, None], xs + 0.5 - centre[:, 1, None, None])
    in_frame = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    where = (
        clip[:, None, None],
        frame[:, None, None],
        np.clip(ys, 0, height - 1),
        np.clip(xs, 0, width - 1),
    )
    mine = (classes.label[where] == colour_label[:, None, None]) & (classes.weight[where] >= 0.5)
    farthest_own = np.where(mine & in_frame, distance, 0.0).max(axis=(1, 2))
    nearest_other = np.where(~mine & in_frame, distance, np.inf).min(axis=(1, 2))
    return nearest_other - farthest_own


def footprint_cover(
    label: np.ndarray,
    clip: np.ndarray,
    frame: np.ndarray,
    centre: np.ndarray,
    radius: np.ndarray,
    own_label: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """How much of a disc around a predicted centre other colours cover, and which covers most.

    Args:
      label: ``PixelClasses.label`` ``[N, T, H, W]``.
      clip: ``[I]`` clip index of each query.
      frame: ``[I]`` frame index.
      centre: ``[I, 2]`` predicted centre ``(y, x)``.
      radius: ``[I]`` disc radius (pixel centres within it count).
      own_label: ``[I]`` the hidden object's label: its own pixels count as covered too (a
        sliver of it may show), but not as the cover.

    Returns:
      ``(covered [I] share of the disc's in-frame pixels that are a colour, cover [I] the
      label other than own_label that covers most of it, 0 if none)``.
    """
    _, _, height, width = label.shape
    count = len(clip)
    if count == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    reach = int(np.ceil(np.max(radius))) + 1
    offsets = np.arange(-reach, reach + 1)
    base_y = np.floor(centre[:, 0]).astype(np.int64)
    base_x = np.floor(centre[:, 1]).astype(np.int64)
    ys = base_y[:, None, None] + offsets[None, :, None]  # [I, B, 1]
    xs = base_x[:, None, None] + offsets[None, None, :]  # [I, 1, B]
    inside = (ys + 0.5 - centre[:, 0, None, None]) ** 2 + (
        xs + 0.5 - centre[:, 1, None, None]
    ) ** 2 <= radius[:, None, None] ** 2
    inside &= (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    seen = label[
        clip[:, None, None],
        frame[:, None, None],
        np.clip(ys, 0, height - 1),
        np.clip(xs, 0, width - 1),
    ].astype(np.int64)  # [I, B, B]
    is_colour = (seen != BACKGROUND) & (seen != OFF_PALETTE)
    area = np.maximum(inside.sum(axis=(1, 2)), 1)
    covered = (inside & is_colour).sum(axis=(1, 2)) / area
    other = inside & is_colour & (seen != own_label[:, None, None])
    votes = np.zeros((count, NUM_LABELS), np.int64)
    query = np.broadcast_to(np.arange(count)[:, None, None], seen.shape)
    np.add.at(votes, (query[other], seen[other]), 1)
    cover = np.where(votes.max(-1) > 0, votes.argmax(-1), 0)
    return covered, cover
