"""`ScheduledTraining`: the train/test-step protocol of `backends` for a Keras model.

A model mixing it in has a `config` with `n_past` and `latent_shape`, is called on
{"context", "conditions", "noise"} to generate, and provides
`rollout_losses(frames, conditions, teacher_forced)`; the mixin provides the rest of what
`backends.train_step` and `backends.test_step` call: compile with the KL and
teacher-forcing schedules, the schedules' values at the current step, the schedule clock,
the loss and validation values, and the loss trackers.
"""

import keras
from keras import ops

from keras_cvae import backends, metrics
from keras_cvae.schedules import KLAnnealing, TeacherForcing

TRACKED = ("loss", "mse", "kl", "kl_anneal", "tfr", "psnr", "copy_last_psnr")


class ScheduledTraining:
    """Mixin for a `keras.Model`: schedules, trackers and the backend-split steps.

    Call `init_training_state(seed)` in `__init__` before building.
    """

    def init_training_state(self, seed):
        """Creates the random generator of the steps, default schedules and the trackers.

        Args:
            seed: Seed of the random draws inside the train and test steps.
        """
        self.seed_generator = keras.random.SeedGenerator(seed)
        # (offset, rate): the schedules are read at offset + rate * optimizer step. A run
        # with a time budget changes them (`keras_cvae.time_budget`) so that the
        # schedules end with its last step; saved with the weights, so resumes keep them.
        self.schedule_clock = self.add_weight(
            shape=(2,), initializer=keras.initializers.Constant([0.0, 1.0]), trainable=False,
            dtype="float32", name="schedule_clock",
        )
        self.kl_annealing = KLAnnealing(schedule="none")
        self.teacher_forcing = TeacherForcing(ratio=1.0, start_decay_epoch=0, decay_step=0.0)
        self.beta = 1.0
        self.free_bits = 0.0
        self.trackers = {name: keras.metrics.Mean(name=name) for name in TRACKED}

    def compile(self, optimizer="adam", kl_annealing=None, teacher_forcing=None, beta=1.0, free_bits=0.0,
                **kwargs):
        """Configures training.

        Args:
            optimizer: A Keras optimizer.
            kl_annealing: A `KLAnnealing`; None keeps the annealing factor at 1.
            teacher_forcing: A `TeacherForcing`; None always feeds the ground truth.
            beta: Weight of the KL term at full strength.
            free_bits: Nats of KL per rollout step left unpenalised (models that use it).
            **kwargs: Passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        super().compile(optimizer=optimizer, **kwargs)
        self.kl_annealing = kl_annealing or KLAnnealing(schedule="none")
        self.teacher_forcing = teacher_forcing or TeacherForcing(ratio=1.0, start_decay_epoch=0, decay_step=0.0)
        self.beta = float(beta)
        self.free_bits = float(free_bits)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def schedules(self):
        """(KL weight, teacher-forcing ratio) at the current step.

        Read from `optimizer.iterations` (through `schedule_clock`), so a compiled step sees
        the current step on both backends and a resumed run continues its schedules.
        """
        clock = self.schedule_clock
        step = clock[0] + clock[1] * keras.ops.cast(self.optimizer.iterations, "float32")
        return self.kl_annealing(step), self.teacher_forcing(step)

    def training_schedule(self):
        """(KL weight, teacher-forcing ratio, teacher-forcing coin) at the current step.

        One coin per batch, drawn from the steps' random stream (saved with checkpoints):
        with probability tfr every step of the batch is fed the ground-truth previous frame.
        """
        kl_anneal, tfr = self.schedules()
        coin = keras.random.uniform((), seed=self.seed_generator)
        return kl_anneal, tfr, coin < tfr

    def train_step(self, *args):
        """One optimizer step; see `backends.train_step`."""
        return backends.train_step(self, *args)

    def make_train_function(self, force=False):
        """Keras's train function, whose host picks each batch's teacher-forcing branch:
        `backends.tf_train_function` or `backends.jax_train_function`."""
        if self.train_function is None or force:
            jax = backends.current_backend() == "jax"
            self.train_function = (backends.jax_train_function if jax else backends.tf_train_function)(self)
        return self.train_function

    def test_step(self, *args):
        """One validation step; see `backends.test_step`."""
        return backends.test_step(self, *args)

    def training_losses(self, data, teacher_forced, kl_anneal):
        """Loss and logged values of one training batch in one teacher-forcing mode.

        Args:
            data: The batch, {"frames", "conditions"} (optionally inside an (x, y) tuple).
            teacher_forced: Python bool; see the model's `rollout_losses`.
            kl_anneal: The annealing factor of the KL term at this step.

        Returns:
            {"loss", "mse", "kl", "psnr"} (PSNR of the predicted future frames).
        """
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        frames = ops.cast(inputs["frames"], "float32")
        predictions, mse, kl, penalty = self.rollout_losses(frames, inputs["conditions"], teacher_forced)
        first_future = self.config.n_past - 1
        psnr = ops.mean(metrics.psnr(predictions[:, first_future:], frames[:, first_future + 1 :]))
        return {"loss": mse + self.beta * kl_anneal * penalty, "mse": mse, "kl": kl, "psnr": psnr}

    def validation_logs(self, data):
        """Generation as at test time (teacher forcing off, latents from the prior): the
        future's MSE and PSNR, and the PSNR of copying the last context frame."""
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        frames = ops.cast(inputs["frames"], "float32")
        n_past = self.config.n_past
        horizon = frames.shape[1] - n_past
        noise = backends.batch_noise((ops.shape(frames)[0], horizon, *self.config.latent_shape),
                                     self.seed_generator)
        predictions = self({"context": frames[:, :n_past], "conditions": inputs["conditions"], "noise": noise})
        future = frames[:, n_past:]
        copy_last = ops.repeat(frames[:, n_past - 1 : n_past], horizon, axis=1)
        return self.track({
            "mse": ops.sum(ops.mean(ops.square(predictions - future), axis=(0, 2, 3, 4))),
            "psnr": ops.mean(metrics.psnr(predictions, future)),
            "copy_last_psnr": ops.mean(metrics.psnr(copy_last, future)),
        })

    def track(self, values):
        """Updates the loss trackers with `values` and returns their results."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in values}
