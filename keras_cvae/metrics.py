"""Frame-quality metrics: PSNR, per-channel ("finn") PSNR and SSIM.

Everything is written once in `keras.ops`, so the same functions serve the offline
evaluation (NumPy in, `keras.ops.convert_to_numpy` on the result) and a compiled
`test_step` (tensors in, tensors out, XLA included). Frames are channels-last,
`[..., H, W, C]`, with values in [0, data_range] (the library uses [0, 1]); any leading
batch/time dimensions are kept, and every function returns one value per frame.
Integer inputs (uint8) are cast as they are, not rescaled: pass `data_range=255` for them.
Computation is in float32 (float64 when an input is float64).

Reference conventions:
- `psnr` matches `skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=1)`
  (one MSE over all pixels and channels of a frame), except that identical frames give a
  finite value instead of infinity: the MSE is clipped at `MSE_FLOOR` (1e-10), i.e.
  100 dB for data range 1.
- `psnr_per_channel` is the "finn" PSNR of the SVG reference evaluation
  (`finn_eval_seq`): PSNR of each channel separately, then averaged over channels.
- `ssim` matches `skimage.metrics.structural_similarity(target, pred,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
  channel_axis=-1)`: an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma),
  K1=0.01, K2=0.03, population covariances, per channel and averaged over channels.
  scikit-image filters with reflect padding and then crops (win_size - 1) // 2 = 5 pixels
  from every side before averaging; the pixels left are exactly those whose window lies
  inside the frame, so a "valid" convolution gives the same map without any padding.
"""

import numpy as np
from keras import ops

MSE_FLOOR = 1e-10  # PSNR cap: 10 * log10(data_range**2 / 1e-10) = 100 dB for range 1.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # As scikit-image: radius int(3.5 * 1.5 + 0.5) = 5, an 11-tap window.
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _as_float(pred, target):
    """Converts both inputs to tensors of one floating dtype (float64 kept, else float32)."""
    pred = ops.convert_to_tensor(pred)
    target = ops.convert_to_tensor(target)
    dtype = "float64" if "float64" in (pred.dtype, target.dtype) else "float32"
    return ops.cast(pred, dtype), ops.cast(target, dtype)


def _staged_mean(x, axis):
    """Mean over `axis` taken one axis at a time.

    Mathematically the same as `ops.mean(x, axis)`, but a float32 sum over a whole frame
    (thousands of values, accumulated sequentially for strided reductions on CPU) loses
    about 1e-4 dB of PSNR; short per-axis sums keep the result within 1e-5 of float64.
    """
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = len(x.shape)
    for ax in sorted({a % ndim for a in axes}, reverse=True):
        x = ops.mean(x, axis=ax)
    return x


def _psnr_from_mse(mse, data_range):
    """10 * log10(data_range**2 / mse) with the MSE clipped at `MSE_FLOOR`."""
    mse = ops.maximum(mse, MSE_FLOOR)
    return 10.0 * ops.log10(ops.cast(data_range**2, mse.dtype) / mse)


def psnr(pred, target, axis=(-3, -2, -1), data_range=1.0):
    """Peak signal-to-noise ratio in dB, one value per frame.

    Args:
        pred: Predicted frames, `[..., H, W, C]`, values in [0, data_range].
        target: Ground-truth frames, same shape as `pred`.
        axis: Axes averaged into the MSE; the default treats the last three as one frame.
        data_range: Peak-to-peak range of the values (1 for [0, 1] images).

    Returns:
        Tensor of shape `pred.shape` without `axis`, `10 * log10(data_range**2 / MSE)`,
        capped at 100 dB (data range 1) for identical frames.
    """
    pred, target = _as_float(pred, target)
    mse = _staged_mean(ops.square(pred - target), axis)
    return _psnr_from_mse(mse, data_range)


def psnr_per_channel(pred, target, data_range=1.0):
    """The SVG reference's "finn" PSNR: PSNR of each channel, averaged over channels.

    Args:
        pred: Predicted frames, `[..., H, W, C]`, values in [0, data_range].
        target: Ground-truth frames, same shape as `pred`.
        data_range: Peak-to-peak range of the values.

    Returns:
        Tensor of shape `pred.shape[:-3]`.
    """
    return ops.mean(psnr(pred, target, axis=(-3, -2), data_range=data_range), axis=-1)


def gaussian_kernel_1d(sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE):
    """Normalised 1-D Gaussian taps as `scipy.ndimage.gaussian_filter1d` builds them.

    Args:
        sigma: Standard deviation in pixels.
        truncate: Radius of the window in standard deviations.

    Returns:
        float64 NumPy array of length `2 * int(truncate * sigma + 0.5) + 1`.
    """
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def _gaussian_filter_valid(images, taps):
    """Separable Gaussian filter of `[N, H, W, C]` with no padding ("valid" region)."""
    channels = images.shape[-1]
    size = len(taps)
    dtype = images.dtype
    column = np.tile(taps.reshape(size, 1, 1, 1), (1, 1, channels, 1))
    row = np.tile(taps.reshape(1, size, 1, 1), (1, 1, channels, 1))
    images = ops.depthwise_conv(images, ops.cast(column, dtype), padding="valid")
    return ops.depthwise_conv(images, ops.cast(row, dtype), padding="valid")


def ssim(pred, target, data_range=1.0, sigma=SSIM_SIGMA):
    """Structural similarity per frame (Gaussian window), averaged over channels.

    All frames and the five filtered quantities (x, y, x*x, y*y, x*y) go through a single
    separable depthwise convolution.

    Args:
        pred: Predicted frames, `[..., H, W, C]` with H and W known and at least the
            window size (11), values in [0, data_range].
        target: Ground-truth frames, same shape as `pred`.
        data_range: Peak-to-peak range of the values.
        sigma: Standard deviation of the Gaussian window.

    Returns:
        Tensor of shape `pred.shape[:-3]`, the mean SSIM of each frame.
    """
    pred, target = _as_float(pred, target)
    height, width, channels = pred.shape[-3:]
    taps = gaussian_kernel_1d(sigma)
    if height is None or width is None or channels is None:
        raise ValueError(f"ssim needs static H, W and C, got {pred.shape}")
    if min(height, width) < len(taps):
        raise ValueError(
            f"ssim needs frames of at least {len(taps)}x{len(taps)}, got {height}x{width}"
        )
    leading = ops.shape(pred)[:-3]
    x = ops.reshape(pred, (-1, height, width, channels))
    y = ops.reshape(target, (-1, height, width, channels))
    stacked = ops.concatenate([x, y, x * x, y * y, x * y], axis=-1)
    filtered = _gaussian_filter_valid(stacked, taps)
    ux, uy, uxx, uyy, uxy = ops.split(filtered, 5, axis=-1)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim_map = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / (
        (ux * ux + uy * uy + c1) * (vx + vy + c2)
    )
    # Same count of valid pixels in every channel, so this is the mean of channel means.
    per_frame = _staged_mean(ssim_map, (-3, -2, -1))
    return ops.reshape(per_frame, leading)


__all__ = [
    "MSE_FLOOR",
    "gaussian_kernel_1d",
    "psnr",
    "psnr_per_channel",
    "ssim",
]
