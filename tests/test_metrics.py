"""PSNR / SSIM against scikit-image (the independent reference) and a plain NumPy loop."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from keras_cvae import metrics

TOL = 1e-4


def _ref_psnr(pred, target):
    return peak_signal_noise_ratio(target, pred, data_range=1)


def _ref_ssim(pred, target):
    return structural_similarity(
        target,
        pred,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1,
    )


def _per_frame(fn, pred, target):
    """Applies a single-frame reference over the leading dims of `[..., H, W, C]`."""
    lead = pred.shape[:-3]
    flat_p = pred.reshape((-1,) + pred.shape[-3:])
    flat_t = target.reshape((-1,) + target.shape[-3:])
    return np.array([fn(p, t) for p, t in zip(flat_p, flat_t)]).reshape(lead)


def _structured_frames(size=64, channels=3):
    """Gradients, a checkerboard, stripes and a blob: non-random content with edges."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    checker = ((np.arange(size)[:, None] // 8 + np.arange(size)[None, :] // 8) % 2).astype(float)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * xx * 5)
    blob = np.exp(-((xx - 0.4) ** 2 + (yy - 0.6) ** 2) / 0.02)
    planes = [xx, yy, checker, stripes, blob, 1 - xx * yy]
    frames = []
    for i in range(4):
        frames.append(np.stack([planes[(i + c) % len(planes)] for c in range(channels)], -1))
    return np.stack(frames).astype(np.float32)


def _pairs():
    """(name, pred, target) with pred/target `[B, T, H, W, C]` in [0, 1]."""
    rng = np.random.default_rng(0)
    random = rng.random((2, 3, 64, 64, 3)).astype(np.float32)
    noisy = np.clip(random + 0.1 * rng.standard_normal(random.shape), 0, 1).astype(np.float32)
    structured = _structured_frames()[None]  # [1, 4, 64, 64, 3]
    s_noisy = np.clip(structured + 0.05 * rng.standard_normal(structured.shape), 0, 1)
    shifted = np.roll(structured, shift=(3, -2), axis=(-3, -2))
    blurred = 0.5 * (structured + np.roll(structured, 1, axis=-2))
    constant = np.full((1, 2, 32, 48, 3), 0.3, np.float32)
    return [
        ("random_noisy", noisy, random),
        ("structured_noisy", s_noisy.astype(np.float32), structured),
        ("structured_shifted", shifted, structured),
        ("structured_blurred", blurred, structured),
        ("structured_vs_random", random[:1, :3, :, :, :], structured[:, :3]),
        ("constant_offset", constant + 0.1, constant),
        ("rect_gray", rng.random((3, 20, 40, 1)), rng.random((3, 20, 40, 1))),
    ]


PAIRS = _pairs()


@pytest.mark.parametrize("name,pred,target", PAIRS, ids=[p[0] for p in PAIRS])
def test_psnr_matches_skimage(name, pred, target):
    got = ops.convert_to_numpy(metrics.psnr(pred, target))
    assert got.shape == pred.shape[:-3]
    np.testing.assert_allclose(got, _per_frame(_ref_psnr, pred, target), atol=TOL, rtol=0)


@pytest.mark.parametrize("name,pred,target", PAIRS, ids=[p[0] for p in PAIRS])
def test_ssim_matches_skimage(name, pred, target):
    got = ops.convert_to_numpy(metrics.ssim(pred, target))
    assert got.shape == pred.shape[:-3]
    np.testing.assert_allclose(got, _per_frame(_ref_ssim, pred, target), atol=TOL, rtol=0)


@pytest.mark.parametrize("name,pred,target", PAIRS, ids=[p[0] for p in PAIRS])
def test_psnr_per_channel_matches_numpy_loop(name, pred, target):
    lead = pred.shape[:-3]
    flat_p = pred.reshape((-1,) + pred.shape[-3:]).astype(np.float64)
    flat_t = target.reshape((-1,) + target.shape[-3:]).astype(np.float64)
    expected = []
    for p, t in zip(flat_p, flat_t):
        values = []
        for c in range(p.shape[-1]):
            mse = np.mean((p[..., c] - t[..., c]) ** 2)
            values.append(10 * np.log10(1.0 / max(mse, metrics.MSE_FLOOR)))
        expected.append(np.mean(values))
    got = ops.convert_to_numpy(metrics.psnr_per_channel(pred, target))
    np.testing.assert_allclose(got, np.reshape(expected, lead), atol=TOL, rtol=0)


def test_per_channel_differs_from_plain_psnr_when_channels_differ():
    rng = np.random.default_rng(1)
    target = rng.random((16, 16, 3)).astype(np.float32)
    pred = target.copy()
    pred[..., 0] += 0.2  # One bad channel: the mean of per-channel dBs is higher.
    plain = float(metrics.psnr(pred, target))
    finn = float(metrics.psnr_per_channel(pred, target))
    assert finn > plain + 1.0


def test_identical_frames_are_capped_and_perfect():
    rng = np.random.default_rng(2)
    frames = rng.random((2, 5, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(metrics.psnr(frames, frames)), 100.0, atol=1e-4)
    np.testing.assert_allclose(
        ops.convert_to_numpy(metrics.psnr_per_channel(frames, frames)), 100.0, atol=1e-4
    )
    np.testing.assert_allclose(ops.convert_to_numpy(metrics.ssim(frames, frames)), 1.0, atol=1e-5)
    assert np.all(np.isfinite(ops.convert_to_numpy(metrics.psnr(frames, frames))))


def test_psnr_custom_axis():
    rng = np.random.default_rng(3)
    a, b = rng.random((2, 2, 4, 8, 8, 3))
    got = ops.convert_to_numpy(metrics.psnr(a, b, axis=(-4, -3, -2, -1)))  # One value per B.
    expected = [10 * np.log10(1 / np.mean((a[i] - b[i]) ** 2)) for i in range(2)]
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_gaussian_kernel_matches_skimage_window():
    taps = metrics.gaussian_kernel_1d()
    assert taps.shape == (11,)
    assert abs(taps.sum() - 1) < 1e-12
    np.testing.assert_allclose(taps, taps[::-1])


def test_ssim_rejects_small_frames():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3)))


def test_metrics_inside_jit_compiled_tf_function():
    rng = np.random.default_rng(4)
    target = rng.random((2, 3, 64, 64, 3)).astype(np.float32)
    pred = np.clip(target + 0.1 * rng.standard_normal(target.shape), 0, 1).astype(np.float32)

    @tf.function(jit_compile=True)
    def evaluate(p, t):
        return metrics.psnr(p, t), metrics.psnr_per_channel(p, t), metrics.ssim(p, t)

    got_psnr, got_finn, got_ssim = evaluate(tf.constant(pred), tf.constant(target))
    assert isinstance(got_ssim, tf.Tensor)
    np.testing.assert_allclose(got_psnr.numpy(), _per_frame(_ref_psnr, pred, target), atol=TOL)
    np.testing.assert_allclose(got_ssim.numpy(), _per_frame(_ref_ssim, pred, target), atol=TOL)
    np.testing.assert_allclose(
        got_finn.numpy(), ops.convert_to_numpy(metrics.psnr_per_channel(pred, target)), atol=TOL
    )


def test_metrics_with_unknown_leading_dims_in_graph():
    spec = tf.TensorSpec([None, None, 32, 32, 3], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def evaluate(p, t):
        return metrics.psnr(p, t), metrics.ssim(p, t)

    rng = np.random.default_rng(5)
    target = rng.random((3, 2, 32, 32, 3)).astype(np.float32)
    pred = rng.random((3, 2, 32, 32, 3)).astype(np.float32)
    got_psnr, got_ssim = evaluate(pred, target)
    assert got_psnr.shape == (3, 2) and got_ssim.shape == (3, 2)
    np.testing.assert_allclose(got_ssim.numpy(), _per_frame(_ref_ssim, pred, target), atol=TOL)
