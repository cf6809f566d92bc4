"""`ScheduledTraining`: the train/test-step protocol of `backends` for a Keras model.

A model mixing it in provides `training_losses(data, teacher_forced, kl_anneal)` and
`validation_logs(data)`; the mixin provides the rest of what `backends.train_step` and
`backends.test_step` call: compile with the KL and teacher-forcing schedules, the
schedules' values at the current step, the schedule clock, and the loss trackers. It is the protocol `SVG`
implements in `keras_cvae.tasks.svg.model`, written once for the models that come after it.
"""

import keras

from keras_cvae import backends
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

    def training_schedule(self):
        """(KL weight, teacher-forcing ratio, teacher-forcing coin) at the current step.

        Read from `optimizer.iterations` (through `schedule_clock`) inside the step, so a
        compiled step sees the current step on both backends and a resumed run continues
        its schedules. One coin per batch: with probability tfr every step is fed the
        ground-truth previous frame.
        """
        clock = self.schedule_clock
        step = clock[0] + clock[1] * keras.ops.cast(self.optimizer.iterations, "float32")
        tfr = self.teacher_forcing(step)
        coin = keras.random.uniform((), seed=self.seed_generator)
        return self.kl_annealing(step), tfr, coin < tfr

    def train_step(self, *args):
        """One optimizer step; see `backends.train_step`."""
        return backends.train_step(self, *args)

    def test_step(self, *args):
        """One validation step; see `backends.test_step`."""
        return backends.test_step(self, *args)

    def track(self, values):
        """Updates the loss trackers with `values` and returns their results."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in values}
