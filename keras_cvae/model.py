"""SVG (Denton & Fergus 2018) as a conditional VAE over action-conditioned video.

Notation (paper, section 3): x_t frames, c_t conditions (robot action and end-effector
position), h_t = Enc(x_t) frame codes, z_t latents.

    posterior      q(z_t | x_1..t)     = GaussianLSTM(h_t, c)
    learned prior  p(z_t | x_1..t-1)   = GaussianLSTM(h_t-1, c)     (or N(0, I): SVG-FP)
    predictor      g_t = LSTM(h_t-1, z_t, c)
    decoder        x^_t = Dec(g_t, skips of the last context frame)

Training maximises the ELBO: sum_t ||x^_t - x_t||^2 + beta * KL(q(z_t) || p(z_t)).
Generation feeds the model's own predictions back and draws z_t from the prior.
The condition of step t is the pair (c_t-1, c_t): the action that moves frame t-1 to
frame t and the end-effector position seen in frame t, whichever convention the data uses.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_cvae import metrics
from keras_cvae.config import ModelConfig
from keras_cvae.distributions import gaussian_kl, reparameterize
from keras_cvae.layers.recurrent import FramePredictor, GaussianLSTM
from keras_cvae.layers.vgg import PACKAGE, VGGDecoder, VGGEncoder
from keras_cvae.schedules import KLAnnealing, TeacherForcing


@keras.saving.register_keras_serializable(package=PACKAGE)
class SVG(keras.Model):
    """Stochastic video generation with a learned (or fixed) prior, conditioned on actions.

    Calling the model runs generation: inputs `{"context": [B, n_past, 64, 64, 3],
    "conditions": [B, n_past + horizon, 7], "noise": [B, horizon, z_dim]}` give the
    predicted frames [B, horizon, 64, 64, 3] in [0, 1]. The horizon is read from the static
    shape of `noise`, so one model predicts any number of frames. The noise is standard
    normal; zeros give the prior's mean path. Conditions are raw values: the model
    normalises them with the statistics it was built with.

    Args:
        config: A `ModelConfig` or its dict.
        condition_mean: Per-dimension mean of the training conditions, or None for zeros.
        condition_std: Per-dimension standard deviation, or None for ones.
        seed: Seed of the random draws inside the train and test steps.
    """

    def __init__(self, config, condition_mean=None, condition_std=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config
        self.seed = seed
        dim = config.condition_dim
        self.initial_condition_mean = [float(v) for v in (condition_mean or [0.0] * dim)]
        self.initial_condition_std = [float(v) for v in (condition_std or [1.0] * dim)]
        if len(self.initial_condition_mean) != dim or len(self.initial_condition_std) != dim:
            raise ValueError(f"condition statistics must have {dim} values")

        self.encoder = VGGEncoder(config.g_dim, config.width, name="encoder")
        self.decoder = VGGDecoder(config.g_dim, config.width, config.channels, name="decoder")
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
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.kl_annealing = KLAnnealing(schedule="none")
        self.teacher_forcing = TeacherForcing(ratio=1.0, start_decay_epoch=0, decay_step=0.0)
        self.beta = 1e-4
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "mse", "kl", "beta", "tfr", "psnr", "copy_last_psnr")
        }
        # Built eagerly so that every sub-network, the posterior included, owns its weights
        # before a .keras file or a checkpoint is loaded into it.
        self.build()

    # ------------------------------------------------------------------ construction
    def build(self, input_shape=None):
        """Creates every weight by running each sub-network once on zeros."""
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
        frame = ops.zeros((1, config.image_size, config.image_size, config.channels))
        code, skips = self.encoder(frame)
        pair = ops.zeros((1, 2 * dim))
        z = ops.zeros((1, config.z_dim))
        self.posterior(self._join(code, pair), self.posterior.initial_state(1))
        if self.prior is not None:
            self.prior(self._join(code, pair), self.prior.initial_state(1))
        g, _ = self.predictor(self._join(code, z, pair), self.predictor.initial_state(1))
        self.decoder(g, skips)
        self.built = True

    def compile(
        self,
        optimizer="adam",
        kl_annealing=None,
        teacher_forcing=None,
        beta=1e-4,
        **kwargs,
    ):
        """Configures training.

        Args:
            optimizer: A Keras optimizer (Adam lr 2e-3, beta1 0.9 in the reference).
            kl_annealing: A `KLAnnealing`; None keeps the KL weight at 1.
            teacher_forcing: A `TeacherForcing`; None always feeds the ground truth.
            beta: Weight of the KL term at full strength (1e-4 in the reference).
            **kwargs: Passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        super().compile(optimizer=optimizer, **kwargs)
        self.kl_annealing = kl_annealing or KLAnnealing(schedule="none")
        self.teacher_forcing = teacher_forcing or TeacherForcing(
            ratio=1.0, start_decay_epoch=0, decay_step=0.0
        )
        self.beta = float(beta)

    @property
    def metrics(self):
        return list(self.trackers.values())

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

    def initial_state(self, batch_size):
        """Zero recurrent state of generation: predictor state, then prior state if learned."""
        state = self.predictor.initial_state(batch_size)
        if self.prior is not None:
            state = state + self.prior.initial_state(batch_size)
        return state

    def prior_latent(self, code, condition_pair, noise, prior_state, training=False):
        """z_t from p(z_t | x_1..t-1): N(0, I) or the learned prior fed h_t-1.

        Returns:
            (z [B, z_dim], mean, log variance, new prior state).
        """
        if self.prior is None:
            zeros = ops.zeros_like(noise)
            return noise, zeros, zeros, prior_state
        mean, log_variance, prior_state = self.prior(
            self._join(code, condition_pair), prior_state, training=training
        )
        return reparameterize(mean, log_variance, noise), mean, log_variance, prior_state

    def predict_next(self, code, skips, condition_pair, noise, state, training=False):
        """One generation step: from h_t-1 (and skips) to x^_t, with z_t from the prior.

        Args:
            code: h_t-1, the code of the latest frame [B, g_dim].
            skips: Encoder skips of the last context frame.
            condition_pair: (c_t-1, c_t) normalised, [B, 2 * condition_dim].
            noise: Standard-normal noise [B, z_dim] for z_t.
            state: Recurrent state from `initial_state` or the previous step.
            training: BatchNorm mode.

        Returns:
            (frame [B, 64, 64, C], new state).
        """
        layers = self.config.predictor_layers * 2
        predictor_state, prior_state = state[:layers], state[layers:]
        z, _, _, prior_state = self.prior_latent(
            code, condition_pair, noise, prior_state, training=training
        )
        g, predictor_state = self.predictor(
            self._join(code, z, condition_pair), predictor_state, training=training
        )
        frame = self.decoder(g, skips, training=training)
        return frame, predictor_state + prior_state

    # ------------------------------------------------------------------ generation
    def call(self, inputs, training=False):
        """Generates `horizon` frames after the context, always feeding its own predictions.

        Context frames are fed as they are; during them z_t is the prior's mean (noise 0)
        and the predictions are discarded. The skips come from the last context frame.
        The loop is a Python loop over static sizes: that keeps the graph exportable.
        """
        context = ops.cast(inputs["context"], "float32")
        noise = ops.cast(inputs["noise"], "float32")
        n_past, horizon = context.shape[1], noise.shape[1]
        pairs = self.condition_pairs(self.normalize_conditions(inputs["conditions"]))
        state = self.initial_state(ops.shape(context)[0])
        frame, predictions = context[:, 0], []
        for t in range(1, n_past + horizon):
            code, frame_skips = self.encoder(frame, training=False)
            if t <= n_past:
                skips = frame_skips
            step_noise = noise[:, t - n_past] if t >= n_past else ops.zeros_like(noise[:, 0])
            prediction, state = self.predict_next(code, skips, pairs[:, t - 1], step_noise, state)
            if t >= n_past:
                predictions.append(prediction)
            frame = context[:, t] if t < n_past else prediction
        return ops.stack(predictions, axis=1)

    # ------------------------------------------------------------------ training
    def _encode_sequence(self, frames, training):
        """Encodes [B, T, ...] frames in one batched call: (codes [B, T, g], skips [B, T, ...])."""
        batch, steps = ops.shape(frames)[0], frames.shape[1]
        codes, skips = self.encoder(ops.reshape(frames, (-1, *frames.shape[2:])), training=training)
        unflat = lambda x: ops.reshape(x, (batch, steps, *x.shape[1:]))  # noqa: E731
        return unflat(codes), [unflat(s) for s in skips]

    def _posterior_sequence(self, codes, pairs, training):
        """q(z_t | x_1..t) for t = 1..T-1 from the ground-truth codes: (mean, log variance)."""
        state = self.posterior.initial_state(ops.shape(codes)[0])
        means, log_variances = [], []
        for t in range(1, codes.shape[1]):
            mean, log_variance, state = self.posterior(
                self._join(codes[:, t], pairs[:, t - 1]), state, training=training
            )
            means.append(mean)
            log_variances.append(log_variance)
        return ops.stack(means, axis=1), ops.stack(log_variances, axis=1)

    def _teacher_forced_rollout(self, codes, skips, pairs, latents):
        """Rollout fed with ground-truth frames.

        Nothing in it waits for a predicted frame, so the encoder ran once on all frames
        and the decoder runs once on all steps: only the small LSTMs are sequential.
        """
        n_past, steps = self.config.n_past, codes.shape[1]
        batch = ops.shape(codes)[0]
        state = self.initial_state(batch)
        layers = self.config.predictor_layers * 2
        outputs, prior_means, prior_log_variances = [], [], []
        for t in range(1, steps):
            predictor_state, prior_state = state[:layers], state[layers:]
            _, mean, log_variance, prior_state = self.prior_latent(
                codes[:, t - 1], pairs[:, t - 1], latents[:, t - 1], prior_state, training=True
            )
            g, predictor_state = self.predictor(
                self._join(codes[:, t - 1], latents[:, t - 1], pairs[:, t - 1]),
                predictor_state,
                training=True,
            )
            state = predictor_state + prior_state
            outputs.append(g)
            prior_means.append(mean)
            prior_log_variances.append(log_variance)
        # Step t decodes with the skips of frame min(t - 1, n_past - 1).
        skip_frames = [min(t - 1, n_past - 1) for t in range(1, steps)]
        step_skips = [
            ops.reshape(ops.take(s, skip_frames, axis=1), (-1, *s.shape[2:])) for s in skips
        ]
        g = ops.reshape(ops.stack(outputs, axis=1), (-1, self.config.g_dim))
        frames = self.decoder(g, step_skips, training=True)
        frames = ops.reshape(frames, (batch, steps - 1, *frames.shape[1:]))
        return frames, ops.stack(prior_means, axis=1), ops.stack(prior_log_variances, axis=1)

    def _free_running_rollout(self, frames, skips, pairs, latents):
        """Rollout fed with the model's own predictions after the context.

        A symbolic while loop (rather than a Python loop) puts the encoder and decoder in
        the compiled graph once instead of once per step; that is what keeps the XLA
        compile of the full-size step short. Raw tf: keras.ops.fori_loop sets no
        maximum_iterations, which XLA needs to differentiate through the loop.
        """
        n_past, steps = self.config.n_past, frames.shape[1]
        # A static batch size keeps every shape inside the loop static, which XLA needs to
        # differentiate through it (training batches are static: drop_remainder=True).
        batch = frames.shape[0] or ops.shape(frames)[0]
        static_batch, z_dim = frames.shape[0], self.config.z_dim
        arrays = [
            tf.TensorArray(frames.dtype, size=steps - 1, element_shape=frames.shape[:1] + frames.shape[2:]),
            tf.TensorArray("float32", size=steps - 1, element_shape=(static_batch, z_dim)),
            tf.TensorArray("float32", size=steps - 1, element_shape=(static_batch, z_dim)),
        ]

        def body(t, previous_prediction, state, arrays):
            use_truth = t - 1 < n_past
            frame = tf.where(use_truth, tf.gather(frames, t - 1, axis=1), previous_prediction)
            code, _ = self.encoder(frame, training=True)
            skip_frame = tf.minimum(t - 1, n_past - 1)
            step_skips = [tf.gather(s, skip_frame, axis=1) for s in skips]
            layers = self.config.predictor_layers * 2
            predictor_state, prior_state = state[:layers], state[layers:]
            pair = tf.gather(pairs, t - 1, axis=1)
            latent = tf.gather(latents, t - 1, axis=1)
            _, mean, log_variance, prior_state = self.prior_latent(
                code, pair, latent, prior_state, training=True
            )
            g, predictor_state = self.predictor(
                self._join(code, latent, pair), predictor_state, training=True
            )
            prediction = self.decoder(g, step_skips, training=True)
            arrays = [
                arrays[0].write(t - 1, prediction),
                arrays[1].write(t - 1, ops.cast(mean, "float32")),
                arrays[2].write(t - 1, ops.cast(log_variance, "float32")),
            ]
            return t + 1, prediction, tuple(predictor_state + prior_state), arrays

        _, _, _, arrays = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(1), frames[:, 0], self.initial_state(batch), arrays),
            maximum_iterations=steps - 1,
        )
        # TensorArrays stack time first.
        return tuple(ops.transpose(a.stack(), (1, 0, *range(2, len(a.element_shape) + 1))) for a in arrays)

    def rollout_losses(self, frames, conditions, teacher_forced, training=True):
        """Training rollout over all frames: (predictions of frames 1..T-1, mse, kl).

        Args:
            frames: [B, T, 64, 64, C] ground truth.
            conditions: [B, T, condition_dim], raw.
            teacher_forced: Python bool. True feeds the ground-truth previous frame at every
                step; False feeds the model's own prediction after the context.
            training: BatchNorm mode.
        """
        frames = ops.cast(frames, "float32")
        pairs = self.condition_pairs(self.normalize_conditions(conditions))
        codes, skips = self._encode_sequence(frames, training)
        mean_q, log_variance_q = self._posterior_sequence(codes, pairs, training)
        noise = keras.random.normal(ops.shape(mean_q), seed=self.seed_generator)
        latents = reparameterize(mean_q, log_variance_q, noise)
        if teacher_forced:
            rollout = self._teacher_forced_rollout(codes, skips, pairs, latents)
        else:
            rollout = self._free_running_rollout(frames, skips, pairs, latents)
        predictions, mean_p, log_variance_p = rollout
        squared_error = ops.square(predictions - frames[:, 1:])
        mse = ops.sum(ops.mean(squared_error, axis=(0, 2, 3, 4)))
        if self.prior is None:
            kl_per_step = gaussian_kl(mean_q, log_variance_q)
        else:
            kl_per_step = gaussian_kl(mean_q, log_variance_q, mean_p, log_variance_p)
        kl = ops.sum(ops.mean(kl_per_step, axis=0))
        return predictions, mse, kl

    def _optimizer_step(self, frames, conditions, kl_weight, teacher_forced):
        """Loss, gradients and update for one teacher-forcing mode: (loss, mse, kl, psnr)."""
        with tf.GradientTape() as tape:
            predictions, mse, kl = self.rollout_losses(frames, conditions, teacher_forced)
            loss = mse + self.beta * kl_weight * kl
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        first_future = self.config.n_past - 1
        psnr = ops.mean(
            metrics.psnr(predictions[:, first_future:], ops.cast(frames[:, first_future + 1 :], "float32"))
        )
        return loss, mse, kl, psnr

    def train_step(self, data):
        """One optimizer step; the teacher-forcing draw is one coin for the whole batch.

        With probability tfr every step of every sequence in the batch is fed the
        ground-truth previous frame, otherwise the model's own predictions after the
        context (the course lab's convention). Each branch computes and applies its own
        gradients, so nothing is differentiated through the conditional: XLA cannot
        differentiate through tf.cond over stateful layers, and the teacher-forced branch
        stays fully batched.
        """
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        frames, conditions = inputs["frames"], inputs["conditions"]
        step = self.optimizer.iterations
        kl_weight = self.kl_annealing(step)
        tfr = self.teacher_forcing(step)
        coin = keras.random.uniform((), seed=self.seed_generator)
        loss, mse, kl, psnr = ops.cond(
            coin < tfr,
            lambda: self._optimizer_step(frames, conditions, kl_weight, True),
            lambda: self._optimizer_step(frames, conditions, kl_weight, False),
        )
        values = {"loss": loss, "mse": mse, "kl": kl, "beta": kl_weight, "tfr": tfr, "psnr": psnr}
        return self._track(values)

    def test_step(self, data):
        """Generation as at test time: tfr 0, latents from the prior, PSNR of the future."""
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        frames, conditions = inputs["frames"], inputs["conditions"]
        n_past = self.config.n_past
        horizon = frames.shape[1] - n_past
        batch = ops.shape(frames)[0]
        noise = keras.random.normal((batch, horizon, self.config.z_dim), seed=self.seed_generator)
        predictions = self(
            {"context": frames[:, :n_past], "conditions": conditions, "noise": noise}
        )
        future = ops.cast(frames[:, n_past:], "float32")
        copy_last = ops.repeat(ops.cast(frames[:, n_past - 1 : n_past], "float32"), horizon, 1)
        values = {
            "mse": ops.sum(ops.mean(ops.square(predictions - future), axis=(0, 2, 3, 4))),
            "psnr": ops.mean(metrics.psnr(predictions, future)),
            "copy_last_psnr": ops.mean(metrics.psnr(copy_last, future)),
        }
        return self._track(values)

    def _track(self, values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in values}
