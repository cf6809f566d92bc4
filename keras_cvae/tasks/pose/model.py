"""The pose-conditioned CVAE of the 2024 course lab: frames of a dancer driven by pose labels.

Notation: x_t frames, p_t pose-label images (the skeleton of frame t), z_t a latent of
`latent_channels` channels at full resolution.

    posterior   q(z_t | x_t, p_t)  = GaussianPredictor(E_x(x_t), E_p(p_t))    (E_x appends x's pixels)
    prior       p(z_t)             = N(0, I)
    generator   x^_t               = G(E_x(x_t-1), E_p(p_t), z_t)

Training: sum_t ||x^_t - x_t||^2 + beta * KL(q(z_t) || N(0, I)), feeding x_t-1 from the
ground truth (teacher forcing) or from the model's own previous prediction.
Generation: from x_0 alone, every later frame from the previous prediction, the frame's
pose label and z_t ~ N(0, I).

The inputs keep the names of `SVG`'s: one context frame, and per frame a "condition" (here
the pose-label image), so evaluation and export read both models the same way.
"""

import keras
from keras import ops

from keras_cvae import backends
from keras_cvae.distributions import gaussian_kl_per_dimension, reparameterize
from keras_cvae.scheduled_model import ScheduledTraining
from keras_cvae.serialization import PACKAGE
from keras_cvae.tasks.pose.config import PoseModelConfig
from keras_cvae.tasks.pose.layers import FrameGenerator, GaussianPredictor, feature_encoder


def _flat(x):
    """[B, T, ...] -> [B * T, ...]."""
    return ops.reshape(x, (-1, *x.shape[2:]))


@keras.saving.register_keras_serializable(package=PACKAGE)
class PoseCVAE(ScheduledTraining, keras.Model):
    """Video prediction conditioned on one pose-label image per frame.

    Calling the model runs generation: inputs `{"context": [B, 1, H, W, 3] (x_0),
    "conditions": [B, 1 + S, H, W, 3] (p_0..p_S), "noise": [B, S, H, W, latent_channels]}`
    give the predicted frames x^_1..x^_S [B, S, H, W, 3] in [0, 1]. S is read from the
    static shape of `noise`, so one model rolls out any number of frames; the noise is
    standard normal (z_t itself, the prior being N(0, I)).

    Args:
        config: A `PoseModelConfig` or its dict.
        seed: Seed of the random draws inside the train and test steps.
    """

    def __init__(self, config, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = PoseModelConfig.from_dict(config)
        self.config = config
        self.seed = seed
        self.frame_encoder = feature_encoder(config.frame_channels, "frame_encoder")
        self.label_encoder = feature_encoder(config.label_channels, "label_encoder")
        self.posterior = GaussianPredictor(config.fusion_channels, config.latent_channels, name="posterior")
        self.generator = FrameGenerator(config.fusion_channels, config.channels, name="generator")
        self.init_training_state(seed)
        # Built eagerly so that the posterior, used only in training, owns its weights
        # before a .keras file or a checkpoint is loaded into it.
        self.build()

    def build(self, input_shape=None):
        """Creates every weight by calling each sub-network once on symbolic inputs: shapes
        only, so that nothing is computed (on JAX every op run eagerly compiles first)."""
        config = self.config
        image = keras.KerasTensor((1, *config.frame_shape))
        frame_features = self.encode_frame(image)
        label_features = self.label_encoder(image)
        self.posterior((frame_features, label_features))
        self.generator((frame_features, label_features, keras.KerasTensor((1, *config.latent_shape))))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(), "seed": self.seed}

    # ------------------------------------------------------------------ one step
    def encode_frame(self, frame, training=False):
        """E_x(x): the frame encoder's features with the frame's own pixels appended, so the
        generator can copy what does not move (most of a frame) without learning to."""
        frame = ops.cast(frame, "float32")
        return ops.concatenate([ops.cast(self.frame_encoder(frame, training=training), "float32"), frame], axis=-1)

    def step(self, previous_frame, label, latent, training=False):
        """Predicts x_t from x_t-1, p_t and z_t: the one step every rollout and export runs.

        Args:
            previous_frame: x_t-1 [N, H, W, C] in [0, 1].
            label: p_t [N, H, W, C] in [0, 1].
            latent: z_t [N, H, W, latent_channels].
            training: BatchNorm mode.

        Returns:
            x^_t float32 [N, H, W, C].
        """
        frame_features = self.encode_frame(previous_frame, training)
        label_features = self.label_encoder(label, training=training)
        return ops.cast(self.generator((frame_features, label_features, latent), training=training), "float32")

    def rollout(self, first_frame, labels, latents, training=False):
        """Runs `step` for t = 1..S in one symbolic loop, feeding back its predictions.

        Args:
            first_frame: x_0 [B, H, W, C].
            labels: p_1..p_S [B, S, H, W, C].
            latents: z_1..z_S [B, S, H, W, latent_channels].
            training: BatchNorm mode.

        Returns:
            x^_1..x^_S float32 [B, S, H, W, C].
        """
        xs = {"label": ops.moveaxis(labels, 1, 0), "latent": ops.moveaxis(ops.cast(latents, "float32"), 1, 0)}

        def body(frame, x):
            return self.step(frame, x["label"], x["latent"], training)

        _, frames = backends.scan(
            body, ops.cast(first_frame, "float32"), xs, lambda frame: frame, self, synchronised=training
        )
        return ops.moveaxis(frames, 0, 1)

    def call(self, inputs, training=False):
        """Generates the frames after the first one, always feeding its own predictions."""
        noise = inputs["noise"]
        steps = noise.shape[1]
        labels = ops.cast(inputs["conditions"][:, 1 : steps + 1], "float32")
        return self.rollout(ops.cast(inputs["context"][:, 0], "float32"), labels, noise, training)

    # ------------------------------------------------------------------ training
    def posterior_moments(self, frames, labels, training):
        """q(z_t | x_t, p_t) for every frame at once: float32 (mean, log variance) [B, T, H, W, N].

        Args:
            frames: x [B, T, H, W, C].
            labels: p [B, T, H, W, C].
            training: BatchNorm mode.
        """
        shape = (ops.shape(frames)[0], frames.shape[1], *self.config.latent_shape)
        frame_features = self.encode_frame(_flat(frames), training)
        label_features = self.label_encoder(_flat(labels), training=training)
        mean, log_variance = self.posterior((frame_features, label_features), training=training)
        return ops.reshape(mean, shape), ops.reshape(log_variance, shape)

    def rollout_losses(self, frames, labels, teacher_forced, training=True):
        """Training rollout over a window: (predictions of frames 1..T-1, mse, kl, penalty).

        mse is the per-frame mean squared error summed over the predicted frames; kl is
        KL(q || N(0, I)) summed over the latent's values and the frames, averaged over the
        batch (the lab's losses); the KL term of the loss (penalty) is kl itself.

        Args:
            frames: [B, T, H, W, C] ground truth in [0, 1].
            labels: [B, T, H, W, C] pose labels.
            teacher_forced: Python bool. True feeds the ground-truth previous frame at every
                step (all steps in one batched call); False feeds the model's own predictions.
            training: BatchNorm mode.
        """
        frames, labels = ops.cast(frames, "float32"), ops.cast(labels, "float32")
        mean, log_variance = self.posterior_moments(frames[:, 1:], labels[:, 1:], training)
        noise = backends.batch_noise(ops.shape(mean), self.seed_generator)
        latents = reparameterize(mean, log_variance, noise)
        if teacher_forced:
            predictions = self.step(_flat(frames[:, :-1]), _flat(labels[:, 1:]), _flat(latents), training)
            predictions = ops.reshape(predictions, ops.shape(frames[:, 1:]))
        else:
            predictions = self.rollout(frames[:, 0], labels[:, 1:], latents, training)
        mse = ops.sum(ops.mean(ops.square(predictions - frames[:, 1:]), axis=(0, 2, 3, 4)))
        kl_per_value = gaussian_kl_per_dimension(mean, log_variance)
        kl = ops.sum(ops.mean(ops.sum(kl_per_value, axis=(2, 3, 4)), axis=0))
        return predictions, mse, kl, kl
