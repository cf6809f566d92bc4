"""Diagonal Gaussians as (mean, log variance) pairs: sampling and KL divergence."""

from keras import ops


def reparameterize(mean, log_variance, noise):
    """Draws z = mean + sigma * noise, differentiable in mean and log variance.

    The noise is an argument rather than drawn here so that the exported graphs stay free
    of random ops (onnxruntime refuses them) and a caller can replay the same sample.

    Args:
        mean: Tensor [..., D].
        log_variance: Tensor [..., D], log sigma^2.
        noise: Standard-normal tensor [..., D].
    """
    return mean + ops.exp(0.5 * log_variance) * noise


def gaussian_kl_per_dimension(mean_q, log_variance_q, mean_p=None, log_variance_p=None):
    """KL(q || p) between diagonal Gaussians, one value per dimension.

    p defaults to N(0, I) (the fixed prior of SVG-FP).

    Args:
        mean_q: Mean of q, [..., D].
        log_variance_q: Log variance of q, [..., D].
        mean_p: Mean of p, [..., D], or None for zeros.
        log_variance_p: Log variance of p, [..., D], or None for zeros.

    Returns:
        Tensor [..., D] of non-negative KL values.
    """
    if mean_p is None:
        mean_p = ops.zeros_like(mean_q)
    if log_variance_p is None:
        log_variance_p = ops.zeros_like(log_variance_q)
    variance_ratio = ops.exp(log_variance_q - log_variance_p)
    squared_distance = ops.square(mean_q - mean_p) * ops.exp(-log_variance_p)
    return 0.5 * (variance_ratio + squared_distance - 1.0 - (log_variance_q - log_variance_p))


def gaussian_kl(mean_q, log_variance_q, mean_p=None, log_variance_p=None):
    """KL(q || p) between diagonal Gaussians, summed over the last axis: Tensor [...].

    Args: as `gaussian_kl_per_dimension`.
    """
    return ops.sum(gaussian_kl_per_dimension(mean_q, log_variance_q, mean_p, log_variance_p), axis=-1)
