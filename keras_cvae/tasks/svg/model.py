"""SVG (Denton & Fergus 2018) as a conditional VAE over action-conditioned video.

One Keras model, longer than 300 lines: its methods are the paper's concepts (step,
rollout, posterior, prior, losses, schedule), each in one place, and splitting the class
would scatter them.

Notation (paper, section 3): x_t frames, c_t conditions (robot action and end-effector
position), h_t = Enc(x_t) frame codes, z_t latents.

    posterior      q(z_t | x_1..t)     = GaussianLSTM(h_t, c)
    learned prior  p(z_t | x_1..t-1)   = GaussianLSTM(h_t-1, c)     (or N(0, I): SVG-FP)
    predictor      g_t = LSTM(h_t-1, z_t, c)
    decoder        x^_t = Dec(g_t, skips of the last context frame)

Training maximises the ELBO: sum_t ||x^_t - x_t||^2 + beta * KL(q(z_t) || p(z_t)); with
`free_bits` > 0 (not in the reference) the KL of a step is only penalised above that many
nats, see `kl_penalty`.
Generation feeds the model's own predictions back and draws z_t from the prior.
The condition of step t is the pair (c_t-1, c_t): the action that moves frame t-1 to
frame t and the end-effector position seen in frame t, whichever convention the data uses.

Two switches of `SVGConfig` extend it (the course lab's extras):
- `latents="hierarchical"` adds spatial latent levels under z_t (`layers.hierarchy`); a
  step's latent is then the flat vector [z_t | level maps], `config.noise_dim` long.
- `conditioning="cconv"` makes every encoder and decoder conv block a conditional
  convolution. The decoder of step t is conditioned on the pair (c_t-1, c_t); the
  encoder on the encoded frame's own c (so each frame is encoded once, whichever step
  reads its code).
"""

import keras
from keras import ops

from keras_cvae import backends
from keras_cvae.distributions import gaussian_kl_per_dimension, reparameterize
from keras_cvae.layers.blocks import scaled_channels
from keras_cvae.scheduled_model import ScheduledTraining
from keras_cvae.serialization import PACKAGE
from keras_cvae.tasks.svg.config import SVGConfig
from keras_cvae.tasks.svg.hierarchy import LatentHierarchy
from keras_cvae.tasks.svg.onnx_protocol import skip_frames
from keras_cvae.tasks.svg.recurrent import FramePredictor, GaussianLSTM
from keras_cvae.tasks.svg.vgg import VGGDecoder, VGGEncoder


@keras.saving.register_keras_serializable(package=PACKAGE)
class SVG(ScheduledTraining, keras.Model):
    """Stochastic video generation with a learned (or fixed) prior, conditioned on actions.

    Calling the model runs generation: inputs `{"context": [B, n_past, 64, 64, 3],
    "conditions": [B, n_past + horizon, 7], "noise": [B, horizon, noise_dim]}` give the
    predicted frames [B, horizon, 64, 64, 3] in [0, 1]. The horizon is read from the static
    shape of `noise`, so one model predicts any number of frames. The noise is standard
    normal; zeros give the prior's mean path. Conditions are raw values: the model
    normalises them with the statistics it was built with.

    Args:
        config: A `SVGConfig` or its dict.
        condition_mean: Per-dimension mean of the training conditions, or None for zeros.
        condition_std: Per-dimension standard deviation, or None for ones.
        seed: Seed of the random draws inside the train and test steps.
    """

    def __init__(self, config, condition_mean=None, condition_std=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = SVGConfig.from_dict(config)
        self.config = config
        self.seed = seed
        dim = config.condition_dim
        self.initial_condition_mean = [float(v) for v in (condition_mean or [0.0] * dim)]
        self.initial_condition_std = [float(v) for v in (condition_std or [1.0] * dim)]
        if len(self.initial_condition_mean) != dim or len(self.initial_condition_std) != dim:
            raise ValueError(f"condition statistics must have {dim} values")

        cconv = config.conditioning == "cconv"
        self.encoder = VGGEncoder(
            config.g_dim, config.width, dim if cconv else None, name="encoder"
        )
        self.decoder = VGGDecoder(
            config.g_dim, config.width, config.channels, 2 * dim if cconv else None,
            name="decoder",
        )
        self.hierarchy = (
            LatentHierarchy(
                config.level_resolutions,
                config.latent_channels,
                scaled_channels(128, config.width),
                learned_prior=config.prior == "learned",
                name="hierarchy",
            )
            if config.latents == "hierarchical"
            else None
        )
        self.predictor = FramePredictor(
            config.rnn_size, config.predictor_layers, config.g_dim, name="predictor"
        )
        self.posterior = GaussianLSTM(
            config.rnn_size, config.posterior_layers, config.z_dim, name="posterior"
        )
        self.prior = (
            GaussianLSTM(config.rnn_size, config.prior_layers, config.z_dim, name="prior")
            if config.prior == "learned"
            else None
        )
        self.init_training_state(seed)
        # Built eagerly so that every sub-network, the posterior included, owns its weights
        # before a .keras file or a checkpoint is loaded into it.
        self.build()

    # ------------------------------------------------------------------ construction
    def build(self, input_shape=None):
        """Creates every weight by calling each sub-network once on symbolic inputs: shapes
        only, so that nothing is computed (on JAX every op run eagerly compiles first)."""
        config = self.config
        dim = config.condition_dim
        self.condition_mean = self.add_weight(
            shape=(dim,),
            initializer=keras.initializers.Constant(self.initial_condition_mean),
            trainable=False,
            name="condition_mean",
        )
        self.condition_std = self.add_weight(
            shape=(dim,),
            initializer=keras.initializers.Constant(self.initial_condition_std),
            trainable=False,
            name="condition_std",
        )
        frame = keras.KerasTensor((1, config.image_size, config.image_size, config.channels))
        pair = keras.KerasTensor((1, 2 * dim))
        code, skips = self.encoder(frame, pair[:, :dim])
        z = keras.KerasTensor((1, config.z_dim))
        self.posterior(self._join(code, pair), self.posterior.initial_state(1))
        if self.prior is not None:
            self.prior(self._join(code, pair), self.prior.initial_state(1))
        g, _ = self.predictor(self._join(code, z, pair), self.predictor.initial_state(1))
        maps = []
        if self.hierarchy is not None:
            levels = keras.KerasTensor((1, self.hierarchy.size))
            self.hierarchy.posterior(skips, skips, z, pair, levels)
            maps, _, _ = self.hierarchy.prior(skips, z, pair, levels, given=True)
        self.decoder(g, skips, maps, pair)
        self.built = True

    def compile(self, optimizer="adam", kl_annealing=None, teacher_forcing=None, beta=1e-4, free_bits=0.0,
                **kwargs):
        """`ScheduledTraining.compile` with the reference's KL weight, 1e-4, by default
        (Adam lr 2e-3, beta1 0.9 is the reference's optimizer)."""
        super().compile(optimizer, kl_annealing, teacher_forcing, beta, free_bits, **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "condition_mean": [float(v) for v in ops.convert_to_numpy(self.condition_mean)],
            "condition_std": [float(v) for v in ops.convert_to_numpy(self.condition_std)],
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ pieces
    def _join(self, *parts):
        """Concatenates codes, latents and conditions in the recurrent nets' dtype."""
        return ops.concatenate([ops.cast(p, self.compute_dtype) for p in parts], axis=-1)

    def normalize_conditions(self, conditions):
        """(conditions - mean) / std with the training statistics stored in the model."""
        return (ops.cast(conditions, "float32") - self.condition_mean) / self.condition_std

    @staticmethod
    def condition_pairs(conditions):
        """[B, T, D] -> [B, T-1, 2D]: step t (1..T-1) sees (c_t-1, c_t)."""
        return ops.concatenate([conditions[:, :-1], conditions[:, 1:]], axis=-1)

    @staticmethod
    def _with_levels(top, levels):
        """Joins (mean, log variance) of z_t and of the spatial levels along the last axis."""
        return tuple(ops.concatenate([a, b], axis=-1) for a, b in zip(top, levels))

    @staticmethod
    def _merge_time(x):
        """[B, T, ...] -> [B * T, ...]."""
        return ops.reshape(x, (-1, *x.shape[2:]))

    def initial_state(self, batch_size):
        """Zero state of a rollout: {"recurrent": LSTM states, "skips": encoder skips}.

        "recurrent" is the predictor's (h, c) per layer, then the learned prior's; "skips"
        will hold the encoder skips of the latest context frame.

        Args:
            batch_size: Rows of the batch (an int or a scalar tensor).
        """
        recurrent = self.predictor.initial_state(batch_size)
        if self.prior is not None:
            recurrent = recurrent + self.prior.initial_state(batch_size)
        skips = [
            ops.zeros((batch_size, *shape), dtype=self.encoder.compute_dtype)
            for shape in self.encoder.skip_shapes(self.config.image_size)
        ]
        return {"recurrent": recurrent, "skips": skips}

    # ------------------------------------------------------------------ one step
    def recurrent_step(self, code, condition_pair, latent_input, recurrent, latent_source, training):
        """The recurrent core of a step: z_t, then the predicted code g_t, from h_t-1.

        Args:
            code: h_t-1, the code of the frame fed to this step [B, g_dim].
            condition_pair: (c_t-1, c_t) normalised, [B, 2 * condition_dim].
            latent_input: [B, z_dim] (the top level only): standard-normal noise when
                `latent_source` is "prior" (z_t = prior mean + sigma * noise; N(0, I)
                gives z_t = noise), or z_t itself when it is "given" (the posterior's
                sample in training).
            recurrent: The "recurrent" part of the state.
            latent_source: "prior" or "given" (a Python string: two traces, no branch).
            training: BatchNorm mode.

        Returns:
            (g_t [B, g_dim], z_t float32 [B, z_dim], (prior mean, prior log variance)
            float32 [B, z_dim], new recurrent state). The fixed prior's mean and log
            variance are zeros.
        """
        layers = 2 * self.config.predictor_layers
        predictor_state, prior_state = recurrent[:layers], recurrent[layers:]
        latent_input = ops.cast(latent_input, "float32")
        if self.prior is None:
            mean = log_variance = ops.zeros_like(latent_input)
        else:
            mean, log_variance, prior_state = self.prior(
                self._join(code, condition_pair), prior_state, training=training
            )
        if latent_source == "given":
            z = latent_input
        else:
            z = reparameterize(mean, log_variance, latent_input)
        g, predictor_state = self.predictor(
            self._join(code, z, condition_pair), predictor_state, training=training
        )
        return g, z, (mean, log_variance), predictor_state + prior_state

    def step(self, frame, condition_pair, latent_input, is_context, state,
             latent_source="prior", training=False):
        """Predicts frame t from frame t-1: the one step every rollout and export runs.

        Encode x_t-1 into h_t-1 (and skips); keep the skips if x_t-1 is a context frame
        (decoding always uses those of the latest context frame); draw z_t (and, with
        hierarchical latents, the spatial levels from x_t-1's skips); run the predictor
        LSTM; decode g_t into x^_t.

        Args:
            frame: x_t-1, the frame fed to this step [B, 64, 64, C] in [0, 1].
            condition_pair: (c_t-1, c_t) normalised, [B, 2 * condition_dim].
            latent_input: Noise or the latents, [B, noise_dim]; see `recurrent_step`.
            is_context: Bool tensor broadcastable to [B, 1, 1, 1]: x_t-1 is a context frame.
            state: {"recurrent", "skips"} from `initial_state` or the previous step.
            latent_source: "prior" or "given"; see `recurrent_step`.
            training: BatchNorm mode.

        Returns:
            (x^_t float32 [B, 64, 64, C], (prior mean, prior log variance) [B, noise_dim],
            new state).
        """
        z_dim = self.config.z_dim
        latent_input = ops.cast(latent_input, "float32")
        code, frame_skips = self.encoder(
            frame, condition_pair[:, : self.config.condition_dim], training=training
        )
        skips = [
            ops.where(is_context, new, old) for new, old in zip(frame_skips, state["skips"])
        ]
        g, z, prior, recurrent = self.recurrent_step(
            code, condition_pair, latent_input[:, :z_dim], state["recurrent"], latent_source,
            training,
        )
        maps = []
        if self.hierarchy is not None:
            maps, *level_prior = self.hierarchy.prior(
                frame_skips, z, condition_pair, latent_input[:, z_dim:], latent_source == "given"
            )
            prior = self._with_levels(prior, level_prior)
        prediction = self.decoder(g, skips, maps, condition_pair, training=training)
        return ops.cast(prediction, "float32"), prior, {"recurrent": recurrent, "skips": skips}

    def rollout(self, truth, condition_pairs, latent_inputs, n_context,
                latent_source="prior", training=False):
        """Runs `step` for t = 1..steps in one symbolic loop, feeding back predictions.

        Step t is fed the ground-truth x_t-1 while t <= n_context, afterwards its own
        previous prediction.

        Args:
            truth: Ground-truth frames [B, >= n_context, 64, 64, C]; frames past
                `n_context` are never fed.
            condition_pairs: [B, steps, 2 * condition_dim], normalised.
            latent_inputs: [B, steps, noise_dim]; see `step`.
            n_context: Number of ground-truth frames fed (a Python int >= 1).
            latent_source: "prior" or "given".
            training: BatchNorm mode.

        Returns:
            (predictions x^_1..x^_steps float32 [B, steps, 64, 64, C],
            (prior means, prior log variances) [B, steps, noise_dim]).
        """
        steps = condition_pairs.shape[1]
        batch = ops.shape(condition_pairs)[0]
        truth = ops.cast(truth[:, : min(n_context, steps)], "float32")
        if truth.shape[1] < steps:  # padding only: these frames are never selected
            padding = ops.zeros((batch, steps - truth.shape[1], *truth.shape[2:]), "float32")
            truth = ops.concatenate([truth, padding], axis=1)
        time_major = lambda x: ops.moveaxis(x, 1, 0)  # noqa: E731
        xs = {
            "truth": time_major(truth),
            "pair": time_major(condition_pairs),
            "latent": time_major(ops.cast(latent_inputs, "float32")),
            "is_context": ops.convert_to_tensor(
                [frame == t - 1 for t, frame in enumerate(skip_frames(steps, n_context), start=1)]),
        }
        z_zeros = ops.zeros((batch, self.config.noise_dim), "float32")
        init = {
            "frame": ops.zeros_like(xs["truth"][0]),
            "prior": (z_zeros, z_zeros),
            "state": self.initial_state(batch),
        }

        def body(carry, x):
            frame = ops.where(x["is_context"], x["truth"], carry["frame"])
            prediction, prior, state = self.step(
                frame, x["pair"], x["latent"], x["is_context"], carry["state"],
                latent_source, training,
            )
            return {"frame": prediction, "prior": prior, "state": state}

        _, (frames, (means, log_variances)) = backends.scan(
            body, init, xs, lambda carry: (carry["frame"], carry["prior"]), self, synchronised=training
        )
        return time_major(frames), (time_major(means), time_major(log_variances))

    # ------------------------------------------------------------------ generation
    def call(self, inputs, training=False):
        """Generates `horizon` frames after the context, always feeding its own predictions.

        The context frames are fed first with z_t the prior's mean (noise 0) and their
        predictions discarded; the skips come from the last context frame.
        """
        context = inputs["context"]
        noise = ops.cast(inputs["noise"], "float32")
        n_past, horizon = context.shape[1], noise.shape[1]
        pairs = self.condition_pairs(self.normalize_conditions(inputs["conditions"]))
        context_noise = ops.zeros((ops.shape(noise)[0], n_past - 1, noise.shape[2]), "float32")
        latent_inputs = ops.concatenate([context_noise, noise], axis=1)
        frames, _ = self.rollout(
            context, pairs[:, : n_past + horizon - 1], latent_inputs, n_past, "prior", training
        )
        return frames[:, n_past - 1 :]

    # ------------------------------------------------------------------ training
    def _encode_sequence(self, frames, conditions, training):
        """Encodes [B, T, ...] frames in one batched call: (codes [B, T, g], skips [B, T, ...]).

        Args:
            frames: [B, T, 64, 64, C].
            conditions: Normalised [B, T, condition_dim]; frame t is encoded with c_t.
            training: BatchNorm mode.
        """
        batch, steps = ops.shape(frames)[0], frames.shape[1]
        codes, skips = self.encoder(
            self._merge_time(frames), self._merge_time(conditions), training=training
        )
        unflat = lambda x: ops.reshape(x, (batch, steps, *x.shape[1:]))  # noqa: E731
        return unflat(codes), [unflat(s) for s in skips]

    def posterior_sequence(self, codes, condition_pairs, training):
        """q(z_t | x_1..t) for t = 1..T-1 from the codes of frames 1..T-1.

        Args:
            codes: h_1..h_T-1 [B, T-1, g_dim].
            condition_pairs: [B, T-1, 2 * condition_dim], normalised.
            training: BatchNorm mode (unused by the LSTMs, passed for uniformity).

        Returns:
            (mean, log variance) float32 [B, T-1, z_dim].
        """
        batch = ops.shape(codes)[0]
        z_zeros = ops.zeros((batch, self.config.z_dim), "float32")

        def body(carry, x):
            mean, log_variance, state = self.posterior(
                self._join(x["code"], x["pair"]), carry["state"], training=training
            )
            return {"q": (mean, log_variance), "state": state}

        init = {"q": (z_zeros, z_zeros), "state": self.posterior.initial_state(batch)}
        xs = {"code": ops.moveaxis(codes, 1, 0), "pair": ops.moveaxis(condition_pairs, 1, 0)}
        _, (means, log_variances) = backends.scan(body, init, xs, lambda carry: carry["q"], self)
        return ops.moveaxis(means, 0, 1), ops.moveaxis(log_variances, 0, 1)

    def posterior_latents(self, codes, skips, condition_pairs, training):
        """Samples the posterior of every level for t = 1..T-1.

        Args:
            codes: h_1..h_T [B, T, g_dim] of the ground-truth frames.
            skips: Their encoder skips, each [B, T, ...].
            condition_pairs: [B, T-1, 2 * condition_dim], normalised.
            training: BatchNorm mode.

        Returns:
            (latents, mean, log variance), float32 [B, T-1, noise_dim].
        """
        mean, log_variance = self.posterior_sequence(codes[:, 1:], condition_pairs, training)
        batch, steps = ops.shape(codes)[0], condition_pairs.shape[1]
        noise = backends.batch_noise((batch, steps, self.config.noise_dim), self.seed_generator)
        z_dim = self.config.z_dim
        latents = reparameterize(mean, log_variance, noise[..., :z_dim])
        if self.hierarchy is None:
            return latents, mean, log_variance
        merge = self._merge_time
        level_values = self.hierarchy.posterior(
            [merge(s[:, 1:]) for s in skips],
            [merge(s[:, :-1]) for s in skips],
            merge(latents),
            merge(condition_pairs),
            merge(noise[..., z_dim:]),
        )
        split = lambda x: ops.reshape(x, (batch, steps, self.hierarchy.size))  # noqa: E731
        return tuple(
            ops.concatenate([top, split(level)], axis=-1)
            for top, level in zip((latents, mean, log_variance), level_values)
        )

    def _teacher_forced_rollout(self, codes, skips, condition_pairs, latents, training=True):
        """The rollout fed only ground-truth frames, with the encoder and decoder batched.

        Nothing in it waits for a predicted frame, so the encoder ran once on all frames
        and the decoder runs once on all steps: only `recurrent_step` (the small LSTMs)
        loops. It computes what stepping `step` by hand does when every step is fed the
        ground-truth frame, the skips still those of the last context frame (BatchNorm
        statistics are over all steps at once in training mode).
        """
        n_past, steps = self.config.n_past, condition_pairs.shape[1]
        batch = ops.shape(codes)[0]

        z_dim = self.config.z_dim

        def body(carry, x):
            g, _, prior, recurrent = self.recurrent_step(
                x["code"], x["pair"], x["latent"], carry["recurrent"], "given", training
            )
            return {"g": g, "prior": prior, "recurrent": recurrent}

        z_zeros = ops.zeros((batch, self.config.z_dim), "float32")
        init = {
            "g": ops.zeros((batch, self.config.g_dim), self.predictor.compute_dtype),
            "prior": (z_zeros, z_zeros),
            "recurrent": self.initial_state(batch)["recurrent"],
        }
        xs = {
            "code": ops.moveaxis(codes[:, :-1], 1, 0),
            "pair": ops.moveaxis(condition_pairs, 1, 0),
            "latent": ops.moveaxis(latents[..., :z_dim], 1, 0),
        }
        _, (g, (means, log_variances)) = backends.scan(
            body, init, xs, lambda carry: (carry["g"], carry["prior"]), self
        )
        prior = (ops.moveaxis(means, 0, 1), ops.moveaxis(log_variances, 0, 1))
        merge = self._merge_time
        maps = []
        if self.hierarchy is not None:
            maps, *level_prior = self.hierarchy.prior(
                [merge(s[:, :-1]) for s in skips],
                merge(latents[..., :z_dim]),
                merge(condition_pairs),
                merge(latents[..., z_dim:]),
                given=True,
            )
            split = lambda x: ops.reshape(x, (batch, steps, self.hierarchy.size))  # noqa: E731
            prior = self._with_levels(prior, [split(x) for x in level_prior])
        step_skips = [
            ops.reshape(ops.take(s, skip_frames(steps, n_past), axis=1), (-1, *s.shape[2:])) for s in skips
        ]
        g = ops.reshape(ops.moveaxis(g, 0, 1), (-1, self.config.g_dim))
        frames = self.decoder(g, step_skips, maps, merge(condition_pairs), training=training)
        frames = ops.reshape(ops.cast(frames, "float32"), (batch, steps, *frames.shape[1:]))
        return frames, prior

    def _training_rollout(self, frames, conditions, teacher_forced, training):
        """Predictions of frames 1..T-1 with latents from the posterior, and both latent
        distributions: (predictions, (posterior mean, log variance), (prior mean, log
        variance) or None for the fixed prior), each [B, T-1, noise_dim].
        Args: as `rollout_losses`."""
        frames = ops.cast(frames, "float32")
        conditions = self.normalize_conditions(conditions)
        pairs = self.condition_pairs(conditions)
        codes, skips = self._encode_sequence(frames, conditions, training)
        latents, mean_q, log_variance_q = self.posterior_latents(codes, skips, pairs, training)
        if teacher_forced:
            predictions, prior = self._teacher_forced_rollout(codes, skips, pairs, latents, training)
        else:
            predictions, prior = self.rollout(
                frames, pairs, latents, self.config.n_past, "given", training
            )
        return predictions, (mean_q, log_variance_q), (None if self.prior is None else prior)

    @staticmethod
    def _kl(posterior, prior):
        """KL(q || p) per sequence, step and dimension; p = N(0, I) where `prior` is None."""
        return gaussian_kl_per_dimension(*posterior, *(prior or ()))

    def kl_penalty(self, posterior, prior):
        """The KL term of the loss, with `free_bits` nats per step left unpenalised.

        The posterior is pushed towards the prior only where a step's KL (mean over the
        batch) exceeds `free_bits`; below it the posterior may carry that much about the
        future for free, which keeps it from collapsing onto the prior before the decoder
        has learned to use it. The learned prior always follows the posterior at full
        strength. With `free_bits` 0 this is the plain KL, value and gradients alike.

        Args:
            posterior: (mean, log variance) [B, T-1, noise_dim].
            prior: The same for the learned prior, or None for N(0, I).

        Returns:
            A scalar: the penalty's value is sum_t max(KL_t, free_bits).
        """
        stop = ops.stop_gradient
        per_step = lambda q, p: ops.mean(ops.sum(self._kl(q, p), axis=-1), axis=0)  # noqa: E731
        held_prior = None if prior is None else tuple(stop(x) for x in prior)
        towards_prior = ops.maximum(per_step(posterior, held_prior), self.free_bits)
        if prior is None:
            return ops.sum(towards_prior)
        held_posterior = tuple(stop(x) for x in posterior)
        towards_posterior = per_step(held_posterior, prior)
        return ops.sum(towards_prior + towards_posterior - stop(towards_posterior))

    def rollout_losses(self, frames, conditions, teacher_forced, training=True):
        """Training rollout over all frames: (predictions of frames 1..T-1, mse, kl, penalty).

        Args:
            frames: [B, T, 64, 64, C] ground truth.
            conditions: [B, T, condition_dim], raw.
            teacher_forced: Python bool. True feeds the ground-truth previous frame at every
                step; False feeds the model's own prediction after the context.
            training: BatchNorm mode.

        Returns:
            The predictions [B, T-1, 64, 64, C]; the MSE summed over steps; the KL summed
            over steps (mean over the batch); the KL term of the loss (`kl_penalty`).
        """
        predictions, posterior, prior = self._training_rollout(frames, conditions, teacher_forced, training)
        squared_error = ops.square(predictions - ops.cast(frames[:, 1:], "float32"))
        mse = ops.sum(ops.mean(squared_error, axis=(0, 2, 3, 4)))
        kl = ops.sum(ops.mean(ops.sum(self._kl(posterior, prior), axis=-1), axis=0))
        return predictions, mse, kl, self.kl_penalty(posterior, prior)

    def latent_kl(self, frames, conditions):
        """What the latent carries: KL(posterior || prior) per sequence, step and dimension.

        The teacher-forced rollout in inference mode, as training sees it. A dimension
        whose KL stays near 0 is unused: its posterior is the prior, so it tells the
        predictor nothing the past did not.

        Args:
            frames: [B, T, 64, 64, C] ground truth.
            conditions: [B, T, condition_dim], raw.

        Returns:
            float32 [B, T-1, noise_dim] in nats; step t predicts frame t.
        """
        _, posterior, prior = self._training_rollout(frames, conditions, True, False)
        return self._kl(posterior, prior)
