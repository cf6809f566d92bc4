"""Pictures of predictions: comparison GIFs and strips (the charts are in `plots`).

Frames are `[T, H, W, C]` (C = 3 or 1, or `[T, H, W]`), float in [0, 1] or uint8. The
prediction covers all T steps: its first `n_past` entries are the context frames (the
model's inputs), the rest are predicted; a prediction of only the `T - n_past` predicted
frames is also accepted and completed with the ground-truth context. Where several samples
of one sequence are drawn, `prediction` is a list of them (or an array `[S, T, H, W, C]`)
and each sample gets its own panel or row.

Colour code everywhere: context frames are framed in green (`CONTEXT_COLOR`) in both
rows/columns, predicted frames in red (`PREDICTION_COLOR`), and the ground truth of a
predicted step in neutral grey (`TRUTH_COLOR`).

Every file is written atomically: to a hidden temporary name in the destination folder,
then renamed over `path`, so a reader never sees a half-written file. imageio is
imported only inside the function that needs it, so importing this module stays cheap.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keras_cvae.files import atomic_path

CONTEXT_COLOR = (0, 200, 0)
PREDICTION_COLOR = (220, 0, 0)
TRUTH_COLOR = (128, 128, 128)
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
GAP = 4  # Pixels between and around cells.
FONT_SIZE = 12
LABEL_HEIGHT = 16  # Height of one line of labels (FONT_SIZE plus descent).
TRUTH_NAME = "ground truth"


def to_uint8(frames):
    """Converts frames to uint8: uint8 is kept, floats in [0, 1] are clipped and rounded.

    Args:
        frames: Array-like (NumPy, tensor) of uint8 or floating values, any shape.

    Returns:
        A uint8 NumPy array of the same shape.
    """
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    if frames.dtype == np.bool_ or np.issubdtype(frames.dtype, np.integer):
        return np.clip(frames, 0, 255).astype(np.uint8)
    frames = np.nan_to_num(frames.astype(np.float64), nan=0.0)
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def _rgb_sequence(frames, name):
    """`[T, H, W]`, `[T, H, W, 1]` or `[T, H, W, 3]` -> uint8 `[T, H, W, 3]`."""
    frames = to_uint8(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be [T, H, W, 1 or 3] frames, got shape {frames.shape}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return frames


def _samples(prediction) -> list:
    """One prediction, a list of them or an `[S, T, H, W, C]` array -> a list."""
    if isinstance(prediction, (list, tuple)):
        return list(prediction)
    prediction = np.asarray(prediction)
    return list(prediction) if prediction.ndim == 5 else [prediction]


def _prediction_names(count):
    return ["prediction"] if count == 1 else [f"sample {i + 1}" for i in range(count)]


def _prepare(ground_truth, prediction, n_past):
    """Validates and aligns the sequences; returns uint8 RGB `[T, H, W, 3]` frames of the
    truth and a list of them, one per sample."""
    truth = _rgb_sequence(ground_truth, "ground_truth")
    steps = truth.shape[0]
    if not 0 <= n_past <= steps:
        raise ValueError(f"n_past={n_past} outside [0, {steps}]")
    predictions = []
    for sample in _samples(prediction):
        pred = _rgb_sequence(sample, "prediction")
        if pred.shape[0] == steps - n_past and n_past > 0:
            pred = np.concatenate([truth[:n_past], pred], axis=0)
        if pred.shape != truth.shape:
            raise ValueError(
                f"prediction {pred.shape} does not match ground_truth {truth.shape} "
                f"(give all T steps, or the T - n_past = {steps - n_past} predicted ones)"
            )
        predictions.append(pred)
    if not predictions:
        raise ValueError("no prediction to draw")
    return truth, predictions


def _framed(frame, color, scale, border):
    """Upscales a uint8 `[H, W, 3]` frame (nearest) and surrounds it with a border."""
    if scale != 1:
        frame = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    height, width = frame.shape[:2]
    cell = np.empty((height + 2 * border, width + 2 * border, 3), np.uint8)
    cell[...] = color
    cell[border : border + height, border : border + width] = frame
    return cell


def _font():
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError, ImportError):  # No FreeType: the fixed bitmap font.
        return ImageFont.load_default()


def _text_width(draw, text, font):
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return right - left


def _centered_text(draw, text, center_x, top, font, fill=TEXT_COLOR):
    draw.text((center_x - _text_width(draw, text, font) / 2, top), text, font=font, fill=fill)


def _step_colors(step, n_past):
    """(truth border, prediction border) colours of time step `step`."""
    if step < n_past:
        return CONTEXT_COLOR, CONTEXT_COLOR
    return TRUTH_COLOR, PREDICTION_COLOR


def comparison_frames(ground_truth, prediction, n_past, *, scale=2, border=2, labels=True):
    """The frames of `save_comparison_gif`, as uint8 `[T, height, width, 3]`.

    Each frame shows the ground truth (left) beside the prediction, or beside each of S
    samples, at one step. Without labels a frame is `GAP + (S + 1) * (cell_w + GAP)` wide
    and `cell_h + 2 * GAP` high, with `cell = frame * scale + 2 * border`; labels add one
    `LABEL_HEIGHT` line above (column titles) and one below (step index and
    context/predicted).

    Args:
        ground_truth: `[T, H, W, C]` frames.
        prediction: `[T, H, W, C]` frames (first `n_past` are the context), or
            `[T - n_past, H, W, C]` predicted frames only; or a list of such samples.
        n_past: Number of context frames.
        scale: Integer nearest-neighbour upscaling factor.
        border: Width in pixels of the coloured frame around each panel.
        labels: Whether to draw the titles and the step caption.
    """
    truth, predictions = _prepare(ground_truth, prediction, n_past)
    names = [TRUTH_NAME, *_prediction_names(len(predictions))]
    steps, height, width = truth.shape[:3]
    cell_h, cell_w = height * scale + 2 * border, width * scale + 2 * border
    top = LABEL_HEIGHT if labels else 0
    canvas_h = top + cell_h + 2 * GAP + (LABEL_HEIGHT if labels else 0)
    canvas_w = GAP + len(names) * (cell_w + GAP)
    column_x = [GAP + column * (cell_w + GAP) for column in range(len(names))]
    font = _font() if labels else None
    out = np.empty((steps, canvas_h, canvas_w, 3), np.uint8)
    for step in range(steps):
        truth_color, pred_color = _step_colors(step, n_past)
        canvas = np.empty((canvas_h, canvas_w, 3), np.uint8)
        canvas[...] = BACKGROUND
        y = top + GAP
        panels = [(truth[step], truth_color)] + [(pred[step], pred_color) for pred in predictions]
        for x, (frame, color) in zip(column_x, panels):
            canvas[y : y + cell_h, x : x + cell_w] = _framed(frame, color, scale, border)
        if labels:
            image = Image.fromarray(canvas)
            draw = ImageDraw.Draw(image)
            for x, name in zip(column_x, names):
                _centered_text(draw, name, x + cell_w / 2, 1, font)
            kind = "context" if step < n_past else "predicted"
            caption = f"t={step + 1}/{steps} {kind}"
            _centered_text(draw, caption, canvas_w / 2, y + cell_h + GAP, font, fill=pred_color)
            canvas = np.asarray(image)
        out[step] = canvas
    return out


def save_comparison_gif(
    path, ground_truth, prediction, n_past, *, fps=4, scale=2, border=2, labels=True
):
    """Writes an endlessly looping GIF: ground truth beside the prediction (or beside each
    sample), one frame per step.

    Context steps are framed in green (both panels); predicted steps in red (prediction)
    and grey (ground truth). See `comparison_frames` for the layout.

    Args:
        path: Destination `.gif` file; folders are created.
        ground_truth: `[T, H, W, C]` frames, float in [0, 1] or uint8.
        prediction: `[T, H, W, C]` frames whose first `n_past` are the context, or only
            the `T - n_past` predicted frames; or a list of such samples.
        n_past: Number of context frames.
        fps: Frames per second.
        scale: Integer upscaling factor (64x64 frames are small on screen).
        border: Width in pixels of the coloured frame.
        labels: Whether to draw titles and the step caption.

    Returns:
        `path`.
    """
    import imageio.v3 as iio

    frames = comparison_frames(
        ground_truth, prediction, n_past, scale=scale, border=border, labels=labels
    )
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
    return path


def prediction_strip(ground_truth, prediction, n_past, *, scale=1, border=2, labels=True):
    """The image of `save_prediction_strip`, as uint8 `[height, width, 3]`.

    Without labels it is `GAP + (S + 1) * (cell_h + GAP)` high for S samples and
    `GAP + T * (cell_w + GAP)` wide, `cell = frame * scale + 2 * border`, the cell of row r
    (0 truth, then one row per sample) and step t starting at `(GAP + r * (cell_h + GAP), GAP + t * (cell_w + GAP))`. Labels
    add a `LABEL_HEIGHT` line on top (time index "t=1".."t=T") and a left margin with the
    row names; `strip_layout` gives the exact offsets.

    Args: as `save_prediction_strip`.
    """
    truth, predictions = _prepare(ground_truth, prediction, n_past)
    steps, height, width = truth.shape[:3]
    layout = strip_layout(steps, height, width, scale=scale, border=border, labels=labels,
                          samples=len(predictions))
    canvas = np.empty((layout["height"], layout["width"], 3), np.uint8)
    canvas[...] = BACKGROUND
    cell_h, cell_w = layout["cell"]
    for step in range(steps):
        truth_color, pred_color = _step_colors(step, n_past)
        rows = [(truth, truth_color)] + [(pred, pred_color) for pred in predictions]
        for row, (frames, color) in enumerate(rows):
            y, x = layout["origin"](row, step)
            canvas[y : y + cell_h, x : x + cell_w] = _framed(frames[step], color, scale, border)
    if labels:
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        font = _font()
        for step in range(steps):
            _, x = layout["origin"](0, step)
            color = CONTEXT_COLOR if step < n_past else PREDICTION_COLOR
            _centered_text(draw, f"t={step + 1}", x + cell_w / 2, 1, font, fill=color)
        for row, name in enumerate(layout["names"]):
            y, _ = layout["origin"](row, 0)
            draw.text((GAP, y + cell_h / 2 - FONT_SIZE / 2), name, font=font, fill=TEXT_COLOR)
        canvas = np.asarray(image)
    return canvas


def strip_layout(steps, height, width, *, scale=1, border=2, labels=True, samples=1):
    """Geometry of a prediction strip.

    Args:
        steps: Time steps (columns).
        height: Frame height in pixels.
        width: Frame width in pixels.
        scale: Integer upscaling factor.
        border: Width in pixels of the coloured frame.
        labels: Whether the strip has labels.
        samples: Prediction rows under the ground truth.

    Returns:
        Dict with `height`, `width` (of the image), `cell` (cell height, width),
        `names` (of the rows) and `origin(row, step) -> (y, x)` of the top-left corner of a
        cell (border included).
    """
    names = [TRUTH_NAME, *_prediction_names(samples)]
    cell_h, cell_w = height * scale + 2 * border, width * scale + 2 * border
    top = LABEL_HEIGHT if labels else 0
    left = _row_label_width(names) if labels else 0

    def origin(row, step):
        return top + GAP + row * (cell_h + GAP), left + GAP + step * (cell_w + GAP)

    return {
        "height": top + GAP + len(names) * (cell_h + GAP),
        "width": left + GAP + steps * (cell_w + GAP),
        "cell": (cell_h, cell_w),
        "names": names,
        "origin": origin,
    }


def _row_label_width(names):
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font()
    return GAP + max(_text_width(draw, name, font) for name in names)


def save_prediction_strip(
    path, ground_truth, prediction, n_past, *, scale=1, border=2, labels=True
):
    """Writes a PNG: ground-truth row over the prediction row (or one row per sample), one
    column per time step.

    Context columns are framed in green in both rows; predicted columns in grey (truth)
    and red (prediction). Time indices are labelled 1-based on top, green for context
    and red for predicted steps. See `prediction_strip` / `strip_layout` for the geometry.

    Args:
        path: Destination `.png` file; folders are created.
        ground_truth: `[T, H, W, C]` frames, float in [0, 1] or uint8.
        prediction: `[T, H, W, C]` frames whose first `n_past` are the context, or only
            the `T - n_past` predicted frames; or a list of such samples.
        n_past: Number of context frames.
        scale: Integer upscaling factor.
        border: Width in pixels of the coloured frame.
        labels: Whether to draw the time indices and row names.

    Returns:
        `path`.
    """
    image = prediction_strip(
        ground_truth, prediction, n_past, scale=scale, border=border, labels=labels
    )
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


__all__ = [
    "CONTEXT_COLOR",
    "PREDICTION_COLOR",
    "TRUTH_COLOR",
    "comparison_frames",
    "prediction_strip",
    "save_comparison_gif",
    "save_prediction_strip",
    "strip_layout",
    "to_uint8",
]
