"""Training runs end to end on tiny data: run folder contents, interruption and resume."""

import csv
import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_cvae import training
from keras_cvae.config import get_preset
from keras_cvae.run_folder import RunError, RunFolder
from keras_cvae.schedules import schedules_from_config

STEPS = 2


def tiny_job(data, **changes):
    preset = get_preset("tiny")
    # Eager on TensorFlow: tracing the two training branches costs about a minute on this
    # CPU, and the compiled path is covered by test_model's fit test. JAX compiles quickly,
    # and uncompiled it would re-trace every loop at every step.
    on_jax = keras.backend.backend() == "jax"
    train = dataclasses.replace(preset.train, epochs=2, steps_per_epoch=STEPS, validation_steps=1,
                                jit_compile=on_jax, run_eagerly=not on_jax, kl="cyclical", kl_cycles=1, kl_ratio=0.5,
                                tfr=1.0, tfr_start_decay_epoch=1, tfr_decay_step=0.5, tfr_floor=0.0)
    return training.TrainingJob(model=preset.model, train=train, data=str(data), preset="tiny",
                                verbose=0, **changes)


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted_then_resumed(generated_dir, tmp_path_factory):
    """A 2-epoch run killed after its first epoch's checkpoint, then resumed."""
    out = tmp_path_factory.mktemp("runs") / "run"
    job = tiny_job(generated_dir, out=out)
    original = training.SampleGif.on_epoch_end

    def stop_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise Interrupt  # after RunCheckpoint, like a kill between epochs

    training.SampleGif.on_epoch_end = stop_after_first_epoch
    try:
        with pytest.raises(Interrupt):
            training.train(job)
    finally:
        training.SampleGif.on_epoch_end = original
    after_first = json.loads((out / "run.json").read_text())
    result = training.train(dataclasses.replace(job, out=None, resume=out))
    return job, after_first, result


@pytest.mark.jax
def test_run_folder_holds_log_curves_gifs_and_checkpoints(interrupted_then_resumed):
    _, after_first, result = interrupted_then_resumed
    run = result.run
    assert after_first["epochs_done"] == 1
    assert run.read_info()["epochs_done"] == 2
    assert [p.name for p in run.checkpoints()] == ["epoch-0001.weights.h5", "epoch-0002.weights.h5"]
    assert (run.path / "curves.png").stat().st_size > 0
    assert sorted(p.name for p in run.samples_dir.iterdir()) == ["epoch-0001.gif", "epoch-0002.gif"]
    assert any((run.path / "tensorboard").rglob("events.out.tfevents*"))
    with open(run.path / "log.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # the resumed epoch appended, not restarted
    for key in ("loss", "mse", "kl", "beta", "tfr", "psnr", "val_psnr", "val_copy_last_psnr"):
        assert len(result.history[key]) == 2, key
    loaded = run.load_model()
    assert loaded.config == run.model_config()


@pytest.mark.jax
def test_resume_continues_iterations_and_schedules(interrupted_then_resumed):
    job, _, result = interrupted_then_resumed
    model = result.run.load_model()
    training.compile_model(model, job.train)
    model.load_weights(result.run.checkpoints()[-1])
    assert int(model.optimizer.iterations) == 2 * STEPS
    # The logged beta and tfr of each epoch are the means of the schedules over its steps,
    # computed here independently of the run.
    kl, teacher_forcing = schedules_from_config(job.train)
    for epoch in range(2):
        steps = np.arange(epoch * STEPS, (epoch + 1) * STEPS)
        total, ramp = job.train.total_steps, job.train.total_steps * job.train.kl_ratio
        expected_beta = np.mean(np.minimum((steps % total) / ramp, 1.0))
        expected_tfr = np.mean(np.maximum(1.0 - np.maximum(steps // STEPS - 1 + 1, 0) * 0.5, 0.0))
        assert result.history["beta"][epoch] == pytest.approx(expected_beta, abs=1e-6)
        assert result.history["tfr"][epoch] == pytest.approx(expected_tfr, abs=1e-6)


def test_resume_without_checkpoint_and_reused_out_are_clear_errors(tmp_path, generated_dir):
    run = RunFolder(tmp_path / "empty-run")
    run.write_info({"model": {}, "train": {}})
    with pytest.raises(RunError, match="no checkpoint"):
        training.train(tiny_job(generated_dir, resume=run.path))
    with pytest.raises(RunError, match="already exists"):
        training.train(tiny_job(generated_dir, out=run.path))
