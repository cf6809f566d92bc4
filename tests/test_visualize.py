"""GIFs, strips and plots: files decode, have the right geometry and colours, writes are atomic."""

import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from keras_cvae import plots
from keras_cvae import visualize as viz

T, H, W, N_PAST = 6, 16, 20, 2


def _sequences(seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.random((T, H, W, 3)).astype(np.float32)
    pred = truth.copy()
    pred[N_PAST:] = np.clip(pred[N_PAST:] + 0.2 * rng.standard_normal(pred[N_PAST:].shape), 0, 1)
    return truth, pred


def _is_color(pixel, color, tol=40):
    return np.all(np.abs(pixel[:3].astype(int) - np.array(color)) <= tol)


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".") or ".tmp" in name]


def _ring(image, y, x, h, w, border):
    """Pixels of the border ring of the cell at (y, x) of size (h, w)."""
    cell = image[y : y + h, x : x + w, :3]
    return np.concatenate(
        [
            cell[:border].reshape(-1, 3),
            cell[-border:].reshape(-1, 3),
            cell[:, :border].reshape(-1, 3),
            cell[:, -border:].reshape(-1, 3),
        ]
    )


def _inner(image, y, x, border, scale):
    """The frame inside the cell at (y, x), subsampled back to H x W."""
    top, left = y + border, x + border
    return image[top : top + H * scale : scale, left : left + W * scale : scale, :3]


def test_to_uint8():
    floats = np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.nan])
    np.testing.assert_array_equal(viz.to_uint8(floats), [0, 0, 128, 255, 255, 0])
    u8 = np.arange(256, dtype=np.uint8)
    assert viz.to_uint8(u8) is u8
    assert viz.to_uint8(np.zeros((2, 4, 4, 3), np.float32)).dtype == np.uint8


@pytest.mark.parametrize("labels", [False, True])
def test_comparison_gif_frames_sizes_and_colors(tmp_path, labels):
    truth, pred = _sequences()
    scale, border = 2, 2
    path = tmp_path / "cmp.gif"
    written = viz.save_comparison_gif(
        path, truth, pred, N_PAST, fps=5, scale=scale, border=border, labels=labels
    )
    assert written == path
    frames = iio.imread(path, index=None)
    expected = viz.comparison_frames(truth, pred, N_PAST, scale=scale, border=border, labels=labels)
    assert frames.shape[0] == T
    assert frames.shape[1:3] == expected.shape[1:3]
    cell_h, cell_w = H * scale + 2 * border, W * scale + 2 * border
    if not labels:
        assert frames.shape[1:3] == (cell_h + 2 * viz.GAP, viz.GAP + 2 * (cell_w + viz.GAP))
    y = viz.GAP + (viz.LABEL_HEIGHT if labels else 0)
    left, right = viz.GAP, 2 * viz.GAP + cell_w
    for step, frame in enumerate(frames):
        truth_ring = _ring(frame, y, left, cell_h, cell_w, border)
        pred_ring = _ring(frame, y, right, cell_h, cell_w, border)
        if step < N_PAST:
            assert all(_is_color(p, viz.CONTEXT_COLOR) for p in truth_ring)
            assert all(_is_color(p, viz.CONTEXT_COLOR) for p in pred_ring)
        else:
            assert all(_is_color(p, viz.PREDICTION_COLOR) for p in pred_ring)
            assert all(_is_color(p, viz.TRUTH_COLOR) for p in truth_ring)
        # The frame content itself sits inside the border (GIF palette: loose tolerance).
        inner = _inner(frame, y, right, border, scale)
        assert np.mean(np.abs(inner.astype(int) - viz.to_uint8(pred[step]).astype(int))) < 20
    meta = iio.immeta(path)
    assert meta.get("loop") == 0
    assert meta.get("duration") == pytest.approx(200, abs=10)
    assert _leftovers(tmp_path) == []


def test_gif_accepts_only_predicted_frames_and_uint8_gray(tmp_path):
    truth, pred = _sequences()
    full = viz.comparison_frames(truth, pred, N_PAST)
    short = viz.comparison_frames(truth, pred[N_PAST:], N_PAST)
    np.testing.assert_array_equal(full, short)
    gray = viz.to_uint8(truth[..., 0])  # [T, H, W] uint8
    path = tmp_path / "gray.gif"
    viz.save_comparison_gif(path, gray, gray[..., None], N_PAST, scale=1)
    assert iio.imread(path, index=None).shape[0] == T


def test_mismatched_shapes_raise():
    truth, pred = _sequences()
    with pytest.raises(ValueError, match="does not match"):
        viz.comparison_frames(truth, pred[:-1], N_PAST)
    with pytest.raises(ValueError, match="n_past"):
        viz.prediction_strip(truth, pred, T + 1)


@pytest.mark.parametrize("labels,scale", [(False, 1), (True, 1), (True, 3)])
def test_prediction_strip_geometry_and_colors(tmp_path, labels, scale):
    truth, pred = _sequences(1)
    border = 2
    path = tmp_path / "sub" / "strip.png"  # Missing folders are created.
    viz.save_prediction_strip(path, truth, pred, N_PAST, scale=scale, border=border, labels=labels)
    image = np.asarray(Image.open(path))
    layout = viz.strip_layout(T, H, W, scale=scale, border=border, labels=labels)
    cell_h, cell_w = H * scale + 2 * border, W * scale + 2 * border
    assert layout["cell"] == (cell_h, cell_w)
    assert image.shape[:2] == (layout["height"], layout["width"])
    if not labels:
        expected = (viz.GAP + 2 * (cell_h + viz.GAP), viz.GAP + T * (cell_w + viz.GAP))
        assert image.shape[:2] == expected
    else:
        assert image.shape[0] > 2 * cell_h and image.shape[1] > T * cell_w
    for step in range(T):
        for row, frames in enumerate((truth, pred)):
            y, x = layout["origin"](row, step)
            ring = _ring(image, y, x, cell_h, cell_w, border)
            if step < N_PAST:
                color = viz.CONTEXT_COLOR
            else:
                color = viz.TRUTH_COLOR if row == 0 else viz.PREDICTION_COLOR
            assert all(_is_color(p, color, tol=0) for p in ring), (step, row)
            inner = _inner(image, y, x, border, scale)
            np.testing.assert_array_equal(inner, viz.to_uint8(frames[step]))
    assert _leftovers(path.parent) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    truth, pred = _sequences()
    path = tmp_path / "strip.png"
    path.write_bytes(b"old")

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        viz.save_prediction_strip(path, truth, pred, N_PAST)
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def _assert_png(path):
    assert path.stat().st_size > 1000
    image = np.asarray(Image.open(path))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0  # Not a blank canvas.
    assert _leftovers(path.parent) == []


def test_plot_curves(tmp_path):
    epochs = 12
    history = {
        "loss": list(1 / np.arange(1, epochs + 1)),
        "val_loss": list(1.1 / np.arange(1, epochs + 1)),
        "mse": list(np.linspace(0.1, 0.01, epochs)),
        "kl": list(np.linspace(3, 1, epochs)),
        "kl_anneal": list(np.linspace(0, 1, epochs)),
        "tfr": list(np.linspace(1, 0.6, epochs)),
        "psnr": list(np.linspace(18, 25, epochs)),
        "val_psnr": list(np.linspace(17, 24, epochs)),
        "val_ssim": list(np.linspace(0.5, 0.8, epochs)),
        "empty": [],
        "weird": ["a", "b"],
    }
    path = tmp_path / "curves.png"
    assert plots.plot_curves(path, history, title="run") == path
    _assert_png(path)


def test_plot_curves_leaves_no_empty_cell(tmp_path):
    # Three families (losses, schedules, PSNR) on two columns: the third panel spans the
    # bottom row, so the bottom-right quarter holds drawing, not an empty white cell.
    history = {"loss": [3.0, 2.0, 1.0], "tfr": [1.0, 0.8, 0.6], "psnr": [18.0, 20.0, 21.0]}
    path = tmp_path / "curves.png"
    plots.plot_curves(path, history)
    image = np.asarray(Image.open(path))[..., :3]
    height, width = image.shape[:2]
    bottom_right = image[height * 3 // 4 :, width * 3 // 4 :]
    assert (bottom_right < 200).any()


@pytest.mark.parametrize(
    "history",
    [{}, {"loss": []}, {"psnr": [20.0]}, {"loss": [0.0, -1.0, np.nan], "lr": [1e-3, 1e-4]}],
)
def test_plot_curves_degenerate_histories(tmp_path, history):
    path = tmp_path / "curves.png"
    plots.plot_curves(path, history)
    _assert_png(path)


def test_plot_per_frame_metrics(tmp_path):
    rng = np.random.default_rng(0)
    steps = 10
    per_frame = {
        "model (1 sample)": {
            "psnr": rng.normal(25, 2, (8, steps)),
            "ssim": rng.normal(0.8, 0.05, (8, steps)),
        },
        "model (best of 100)": np.stack([np.linspace(28, 22, steps), np.linspace(0.9, 0.8, steps)]),
        "copy last frame": {"psnr": np.linspace(22, 15, steps)},  # No SSIM: skipped there.
    }
    path = tmp_path / "per_frame.png"
    assert plots.plot_per_frame_metrics(path, per_frame, n_past=2) == path
    _assert_png(path)
    with pytest.raises(ValueError, match="per_frame"):
        plots.plot_per_frame_metrics(tmp_path / "bad.png", {"x": np.zeros(steps)}, n_past=2)


def test_import_is_cheap():
    code = (
        "import sys, keras_cvae.visualize; "
        "bad = [m for m in ('matplotlib', 'imageio', 'tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_several_samples_get_a_row_each_in_the_strip():
    truth, _ = _sequences(1)
    rng = np.random.default_rng(3)
    samples = [rng.random(truth.shape) for _ in range(3)]
    image = viz.prediction_strip(truth, samples, N_PAST, labels=False)
    layout = viz.strip_layout(T, H, W, labels=False, samples=3)
    assert layout["names"] == ["ground truth", "sample 1", "sample 2", "sample 3"]
    assert image.shape[:2] == (layout["height"], layout["width"])
    assert image.shape[0] == viz.GAP + 4 * (layout["cell"][0] + viz.GAP)
    for row, frames in enumerate([truth, *samples]):
        for step in range(N_PAST, T):
            y, x = layout["origin"](row, step)
            np.testing.assert_array_equal(_inner(image, y, x, 2, 1), viz.to_uint8(frames[step]))


def test_several_samples_sit_side_by_side_in_the_gif():
    truth, _ = _sequences(1)
    rng = np.random.default_rng(4)
    samples = np.stack([rng.random(truth.shape) for _ in range(2)])  # [S, T, H, W, C]
    frames = viz.comparison_frames(truth, samples, N_PAST, scale=1, labels=False)
    cell_w = W + 4
    assert frames.shape[2] == viz.GAP + 3 * (cell_w + viz.GAP)
    step = T - 1
    for column, sequence in enumerate([truth, *samples]):
        x = viz.GAP + column * (cell_w + viz.GAP)
        np.testing.assert_array_equal(_inner(frames[step], viz.GAP, x, 2, 1), viz.to_uint8(sequence[step]))
