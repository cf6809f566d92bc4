"""Test helper: weights that make an untrained model's outputs vary.

At the reference's N(0, 0.02) init an untrained net in inference mode is numerically
constant, which would make comparisons of its outputs (parity, noise effect) empty.
"""

import numpy as np


def randomize_weights(model, seed):
    """Larger random weights than the N(0, 0.02) init, so that outputs vary by far more
    than the parity tolerance and the noise visibly changes the prediction."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "kernel" in weight.path:
            # A transposed convolution's kernel is (h, w, out, in).
            fan_in = np.prod(shape[:-2]) * shape[-1] if "transpose" in weight.path else np.prod(shape[:-1])
            # Smaller log variances keep exp(logvar / 2) * noise, hence activations, moderate.
            gain = 0.5 if "log_variance" in weight.path else 1.5
            weight.assign(rng.normal(0.0, gain / np.sqrt(fan_in), shape).astype("float32"))
        elif "bias" in weight.path or "beta" in weight.path:
            weight.assign(rng.normal(0.0, 0.1, shape).astype("float32"))
        elif "scale_weights" in weight.path:  # conditional convolution: the condition's scales
            weight.assign(rng.normal(0.0, 0.05, shape).astype("float32"))
