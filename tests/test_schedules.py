"""KL annealing and teacher-forcing schedules at chosen steps."""

import numpy as np
import pytest
from keras import ops

from keras_cvae.config import TrainConfig
from keras_cvae.schedules import KLAnnealing, TeacherForcing, schedules_from_config


def value(schedule, step):
    return float(ops.convert_to_numpy(schedule(step)))


def test_cyclical_ramps_and_restarts():
    # 1000 steps, 4 cycles of 250, ramp over the first 125 steps of each.
    kl = KLAnnealing("cyclical", total_steps=1000, cycles=4, ratio=0.5)
    assert value(kl, 0) == 0.0
    assert value(kl, 62.5) == pytest.approx(0.5)
    assert value(kl, 125) == pytest.approx(1.0)
    assert value(kl, 249) == pytest.approx(1.0)
    assert value(kl, 250) == 0.0
    assert value(kl, 250 + 25) == pytest.approx(0.2)
    assert value(kl, 999) == pytest.approx(1.0)


def test_monotonic_ramps_once():
    kl = KLAnnealing("monotonic", total_steps=1000, cycles=4, ratio=0.5)
    assert value(kl, 0) == 0.0
    assert value(kl, 100) == pytest.approx(0.8)
    assert value(kl, 125) == pytest.approx(1.0)
    assert value(kl, 250) == pytest.approx(1.0)  # no restart
    assert value(kl, 900) == pytest.approx(1.0)


def test_none_is_always_one():
    kl = KLAnnealing("none", total_steps=100)
    assert [value(kl, s) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]


def test_teacher_forcing_decays_per_epoch_to_floor():
    tf = TeacherForcing(ratio=1.0, start_decay_epoch=2, decay_step=0.3, floor=0.2, steps_per_epoch=10)
    epochs = np.arange(8)
    expected = np.maximum(1.0 - np.maximum(epochs - 2 + 1, 0) * 0.3, 0.2)
    got = [value(tf, e * 10 + 9) for e in epochs]  # last step of each epoch
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert value(tf, 19) == 1.0 and value(tf, 20) == pytest.approx(0.7)


def test_schedules_work_on_tensor_steps_and_from_config():
    config = TrainConfig(epochs=4, steps_per_epoch=5, kl="cyclical", kl_cycles=2, kl_ratio=0.5,
                         tfr=0.9, tfr_start_decay_epoch=1, tfr_decay_step=0.1, tfr_floor=0.0)
    kl, tf = schedules_from_config(config)
    steps = ops.convert_to_tensor(np.arange(20), "int64")
    betas = ops.convert_to_numpy(kl(steps))
    np.testing.assert_allclose(betas[:10], np.minimum((np.arange(10) % 10) / 10 / 0.5, 1.0), rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(tf(steps))[::5], [0.9, 0.8, 0.7, 0.6], rtol=1e-6)
