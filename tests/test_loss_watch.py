"""The loss watch that keeps an exploding step out of the checkpoints."""

import numpy as np

from keras_cvae.callbacks import LossWatch


def feed(watch, losses, first_step=1):
    """Feeds per-step losses as Keras logs them: the epoch's running mean."""
    total = 0.0
    for step, loss in enumerate(losses, start=first_step):
        total += loss
        watch.record(step, total / step)


def test_the_step_losses_are_recovered_from_the_running_means():
    losses = np.random.default_rng(0).uniform(0.1, 0.2, size=300)
    watch = LossWatch(window=400)
    feed(watch, losses)
    np.testing.assert_allclose(watch.recent(), losses, rtol=1e-9)


def test_a_spike_is_suspect_and_normal_noise_is_not():
    watch = LossWatch(window=50, factor=10.0, warmup=10)
    feed(watch, [0.1, 0.12, 0.09, 0.3, 0.11] * 4)
    assert watch.problem() is None
    watch.record(21, (sum([0.1, 0.12, 0.09, 0.3, 0.11] * 4) + 5.0) / 21)
    problem = watch.problem()
    assert problem is not None and "5 is over 10 times the median 0.11" in problem


def test_a_non_finite_loss_is_suspect_even_before_the_warmup():
    watch = LossWatch(warmup=10)
    feed(watch, [0.1, float("nan")])
    assert "nan" in watch.problem()
    assert LossWatch(warmup=10).problem() is None


def test_before_the_warmup_only_finiteness_counts():
    watch = LossWatch(warmup=10)
    feed(watch, [0.1] * 5 + [100.0])
    assert watch.problem() is None


def test_the_median_follows_a_lasting_change_of_level():
    watch = LossWatch(window=20, factor=10.0, warmup=5)
    feed(watch, [0.1] * 20 + [5.0] * 12)
    assert watch.problem() is None  # over half the window at the new level


def test_a_new_epoch_starts_a_new_running_mean_and_a_checkpoint_carries_the_past():
    watch = LossWatch(window=10, warmup=3)
    feed(watch, [0.2, 0.2, 0.2])
    watch.start_epoch()
    feed(watch, [0.3, 0.3])
    np.testing.assert_allclose(watch.recent(), [0.2, 0.2, 0.2, 0.3, 0.3])
    resumed = LossWatch(window=10, warmup=3, recent=watch.recent())
    # Resumed mid-epoch at step 3: the mean before it is unknown, so that step is skipped.
    resumed.record(3, 0.3)
    resumed.record(4, (0.3 * 3 + 9.0) / 4)
    np.testing.assert_allclose(resumed.recent(), [0.2, 0.2, 0.2, 0.3, 0.3, 9.0])
    assert "over 10 times" in resumed.problem()
