"""KL divergence and the reparameterization trick."""

import numpy as np
from keras import ops

from keras_cvae.distributions import gaussian_kl, reparameterize


def test_kl_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 8)).astype("float32")
    log_variance = rng.normal(size=(5, 8)).astype("float32")
    kl = ops.convert_to_numpy(gaussian_kl(mean, log_variance, mean, log_variance))
    np.testing.assert_allclose(kl, 0.0, atol=1e-6)


def test_kl_to_standard_normal_is_default_prior():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(3, 4)).astype("float32")
    log_variance = rng.normal(size=(3, 4)).astype("float32")
    explicit = gaussian_kl(mean, log_variance, np.zeros_like(mean), np.zeros_like(log_variance))
    np.testing.assert_allclose(
        ops.convert_to_numpy(gaussian_kl(mean, log_variance)), ops.convert_to_numpy(explicit), rtol=1e-6
    )


def test_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(2)
    mean_q, log_var_q = np.array([0.3, -1.0, 0.5]), np.array([-0.5, 0.2, 0.0])
    mean_p, log_var_p = np.array([0.0, -0.5, 1.0]), np.array([0.3, -0.2, 0.1])
    samples = mean_q + np.exp(0.5 * log_var_q) * rng.standard_normal((400_000, 3))

    def log_density(x, mean, log_var):
        return -0.5 * (np.log(2 * np.pi) + log_var + (x - mean) ** 2 / np.exp(log_var))

    monte_carlo = np.mean(
        np.sum(log_density(samples, mean_q, log_var_q) - log_density(samples, mean_p, log_var_p), axis=-1)
    )
    closed_form = float(ops.convert_to_numpy(gaussian_kl(
        mean_q.astype("float32"), log_var_q.astype("float32"),
        mean_p.astype("float32"), log_var_p.astype("float32"))))
    assert abs(closed_form - monte_carlo) < 0.01, (closed_form, monte_carlo)


def test_reparameterize_moments():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((200_000, 2)).astype("float32")
    mean = np.array([1.5, -2.0], "float32")
    log_variance = np.log(np.array([0.25, 4.0], "float32"))
    z = ops.convert_to_numpy(reparameterize(mean, log_variance, noise))
    np.testing.assert_allclose(z.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(z.var(0), [0.25, 4.0], rtol=0.02)
