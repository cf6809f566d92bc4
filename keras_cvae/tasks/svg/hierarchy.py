"""Hierarchical latents: spatial latent maps under SVG's z_t, each level with its own
posterior and prior, the coarser level conditioning the finer.

The structure follows HAF-SVG (Lin, Yuan and Li, IJCAI 2020): latent variables at several
feature scales instead of one vector, generated top-down from coarse to fine, each level
with its own posterior and prior, and each injected into the decoder at its own scale.
It departs from HAF-SVG in three ways, to stay on SVG's one step function and its
streaming export:

- the top level is SVG's own z_t (the recurrent posterior and learned prior, unchanged);
- the spatial levels' posteriors and priors are small convolutional nets, not recurrent:
  their memory of the past comes through the top level's sample they are conditioned on,
  so the exported step carries no extra state;
- there is no feature-alignment module: a level reads the encoder skip of its resolution.

At step t, level l (resolution r_l = 8, 16, ... pixels, coarsest first) has

    posterior  q(z^l_t | skip_r(x_t), skip_r(x_t-1), z^<l_t, c)
    prior      p(z^l_t | skip_r(x_t-1), z^<l_t, c)          (or N(0, I) with a fixed prior)

where z^<l_t enters as the next coarser level's sample upsampled x2 (the top z_t tiled
over the map for the first level) and c is the step's condition pair tiled over the map.
All levels travel as one flat latent vector per step, `[z_t | z^1_t | z^2_t ...]` with
each map flattened, so the noise input, the KL (summed over every level) and the exported
interfaces keep SVG's shapes with a longer last axis.
"""

import keras
from keras import layers, ops

from keras_cvae.distributions import reparameterize
from keras_cvae.layers.blocks import conv_initializer, upsample_nearest
from keras_cvae.serialization import PACKAGE


def tile(vector, size):
    """[N, D] -> [N, size, size, D], the vector repeated at every pixel.

    Args:
        vector: A [N, D] tensor.
        size: Side of the map.
    """
    return ops.reshape(vector, (-1, 1, 1, vector.shape[-1])) * ops.ones((1, size, size, 1), vector.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianConv(layers.Layer):
    """A convolutional net whose output is a diagonal Gaussian at every pixel.

    Args:
        hidden: Channels of its hidden 3x3 convolution.
        latent_channels: Channels of the latent map.
    """

    def __init__(self, hidden, latent_channels, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.latent_channels = latent_channels
        self.hidden_conv = layers.Conv2D(
            hidden, 3, padding="same", kernel_initializer=conv_initializer(), name="hidden"
        )
        # Mean and log variance stay float32 under mixed precision: exp(logvar) overflows fp16.
        self.mean = layers.Conv2D(
            latent_channels, 3, padding="same", kernel_initializer=conv_initializer(),
            dtype="float32", name="mean",
        )
        self.log_variance = layers.Conv2D(
            latent_channels, 3, padding="same", kernel_initializer=conv_initializer(),
            dtype="float32", name="log_variance",
        )

    def call(self, inputs):
        """Returns (mean, log variance), float32 [N, H, W, latent_channels]."""
        hidden = ops.leaky_relu(self.hidden_conv(inputs), 0.2)
        return self.mean(hidden), self.log_variance(hidden)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden": self.hidden,
            "latent_channels": self.latent_channels,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class LatentHierarchy(layers.Layer):
    """The spatial latent levels of one step, coarse to fine (see the module docstring).

    Args:
        resolutions: Side of each level's map, coarsest first, each twice the previous.
        latent_channels: Channels of every level's map.
        hidden: Channels of the hidden convolution of every posterior and prior net.
        learned_prior: Learned conv priors, or False for N(0, I) at every level.
    """

    def __init__(self, resolutions, latent_channels, hidden, learned_prior=True, **kwargs):
        super().__init__(**kwargs)
        self.resolutions = tuple(int(r) for r in resolutions)
        self.latent_channels = latent_channels
        self.hidden = hidden
        self.learned_prior = learned_prior
        self.posteriors = [
            GaussianConv(hidden, latent_channels, name=f"posterior{r}") for r in self.resolutions
        ]
        self.priors = (
            [GaussianConv(hidden, latent_channels, name=f"prior{r}") for r in self.resolutions]
            if learned_prior
            else None
        )

    @property
    def sizes(self):
        """Flattened size of each level's map."""
        return [r * r * self.latent_channels for r in self.resolutions]

    @property
    def size(self):
        """Length of all levels flattened together."""
        return sum(self.sizes)

    def split(self, flat):
        """[N, size] -> one map [N, r, r, latent_channels] per level, coarsest first."""
        maps, start = [], 0
        for resolution, size in zip(self.resolutions, self.sizes):
            part = flat[:, start : start + size]
            maps.append(ops.reshape(part, (-1, resolution, resolution, self.latent_channels)))
            start += size
        return maps

    @staticmethod
    def flatten(maps):
        """One map per level -> [N, size], the inverse of `split`."""
        return ops.concatenate(
            [ops.reshape(m, (-1, m.shape[1] * m.shape[2] * m.shape[3])) for m in maps], axis=-1
        )

    def _features(self, skips):
        by_resolution = {skip.shape[1]: skip for skip in skips}
        return [by_resolution[r] for r in self.resolutions]

    def _levels(self, networks, features, top_latent, condition, latent_input, given):
        """Runs the levels coarse to fine.

        Args:
            networks: One `GaussianConv` per level, or None for N(0, I).
            features: One list of feature maps per level, concatenated as its input.
            top_latent: SVG's z_t [N, z_dim].
            condition: [N, condition_dim], tiled over every map.
            latent_input: [N, size]: noise (z = mean + sigma * noise) or, when `given`,
                the latents themselves.
            given: Python bool.

        Returns:
            (latent maps, one per level; mean [N, size]; log variance [N, size]).
        """
        top_latent = ops.cast(top_latent, "float32")
        condition = ops.cast(condition, "float32")
        coarser = None
        maps, means, log_variances = [], [], []
        for level, (resolution, inputs) in enumerate(zip(self.resolutions, self.split(latent_input))):
            if coarser is None:
                coarser = tile(top_latent, resolution)
            if networks is None:
                mean = log_variance = ops.zeros_like(inputs)
            else:
                parts = [*features[level], coarser, tile(condition, resolution)]
                dtype = networks[level].compute_dtype
                mean, log_variance = networks[level](
                    ops.concatenate([ops.cast(p, dtype) for p in parts], axis=-1)
                )
            latent = inputs if given else reparameterize(mean, log_variance, inputs)
            maps.append(latent)
            means.append(mean)
            log_variances.append(log_variance)
            coarser = upsample_nearest(latent)
        return maps, self.flatten(means), self.flatten(log_variances)

    def prior(self, previous_skips, top_latent, condition, latent_input, given):
        """The prior levels of a step, from the encoder skips of x_t-1.

        Args:
            previous_skips: Encoder skips of x_t-1, finest first.
            top_latent: SVG's z_t [N, z_dim].
            condition: The step's condition pair [N, condition_dim].
            latent_input: [N, size]: noise, or the latents when `given`.
            given: Python bool: the latents are given (training) rather than drawn.

        Returns:
            (latent maps, coarsest first; prior mean [N, size]; prior log variance [N, size]).
        """
        features = [[f] for f in self._features(previous_skips)]
        return self._levels(self.priors, features, top_latent, condition, latent_input, given)

    def posterior(self, skips, previous_skips, top_latent, condition, noise):
        """Samples the posterior levels of a step, from the skips of x_t and x_t-1.

        Args:
            skips: Encoder skips of x_t, finest first.
            previous_skips: Encoder skips of x_t-1, finest first.
            top_latent: The posterior's sample of SVG's z_t [N, z_dim].
            condition: The step's condition pair [N, condition_dim].
            noise: Standard normal [N, size].

        Returns:
            (sample [N, size], posterior mean [N, size], posterior log variance [N, size]).
        """
        features = [list(pair) for pair in zip(self._features(skips), self._features(previous_skips))]
        maps, mean, log_variance = self._levels(
            self.posteriors, features, top_latent, condition, noise, given=False
        )
        return self.flatten(maps), mean, log_variance

    def get_config(self):
        return {
            **super().get_config(),
            "resolutions": list(self.resolutions),
            "latent_channels": self.latent_channels,
            "hidden": self.hidden,
            "learned_prior": self.learned_prior,
        }
