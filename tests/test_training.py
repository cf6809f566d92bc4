"""Training runs end to end on tiny data: run folder contents, interruption and resume."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_cvae import training
from keras_cvae.callbacks import LossWatch
from keras_cvae.data import DataError
from keras_cvae.run_folder import RunError, RunFolder
from keras_cvae.schedules import schedules_from_config
from keras_cvae.tasks.svg.config import get_preset

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

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


# On JAX: test_multihost.py's runs write and resume a run folder, ending as an uninterrupted
# run (weights and log rows).
def test_run_folder_holds_log_curves_gifs_and_checkpoints(interrupted_then_resumed):
    _, after_first, result = interrupted_then_resumed
    run = result.run
    assert after_first["epochs_done"] == 1
    assert run.read_info()["epochs_done"] == 2
    assert run.read_info()["devices"] == 1  # no GPU here
    assert [c.name for c in run.checkpoints()] == ["epoch-0001", "epoch-0002"]
    assert (run.path / "curves.png").stat().st_size > 0
    assert sorted(p.name for p in run.samples_dir.iterdir()) == ["epoch-0001.gif", "epoch-0002.gif"]
    from PIL import Image

    from keras_cvae import visualize

    cell = 64 * 2 + 2 * 2  # the GIF's scale and border
    width = Image.open(run.samples_dir / "epoch-0002.gif").size[0]
    assert width == visualize.GAP + 4 * (cell + visualize.GAP)  # the ground truth and three samples
    latent = json.loads((run.path / "latent_kl.json").read_text())
    z_dim, steps = run.model_config().z_dim, run.model_config().window_length - 1
    assert latent["epochs"] == [1, 2]  # the resumed run kept the first epoch's record
    assert np.asarray(latent["kl_per_dimension"]).shape == (2, z_dim)
    assert np.asarray(latent["kl_per_step"]).shape == (2, steps)
    # Flat latents: the mean KL of a dimension over the steps, summed, is the mean per step.
    np.testing.assert_allclose(np.sum(latent["kl_per_dimension"], axis=1),
                               np.mean(latent["kl_per_step"], axis=1), rtol=1e-5)
    assert (run.path / "latent_kl.png").stat().st_size > 0
    assert any((run.path / "tensorboard").rglob("events.out.tfevents*"))
    with open(run.path / "log.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # the resumed epoch appended, not restarted
    assert run.train_config() == tiny_job(".").train  # resumed without changes: its own settings
    for key in ("loss", "mse", "kl", "kl_anneal", "tfr", "psnr", "val_psnr", "val_copy_last_psnr"):
        assert len(result.history[key]) == 2, key
    loaded = run.load_model()
    assert loaded.config == run.model_config()


def test_resume_continues_iterations_and_schedules(interrupted_then_resumed):
    job, _, result = interrupted_then_resumed
    model = result.run.load_model()
    training.compile_model(model, job.train)
    model.load_weights(result.run.checkpoints()[-1].weights_path)
    assert int(model.optimizer.iterations) == 2 * STEPS
    # The logged kl_anneal and tfr of each epoch are the means of the schedules over its steps,
    # computed here independently of the run.
    kl, teacher_forcing = schedules_from_config(job.train)
    for epoch in range(2):
        steps = np.arange(epoch * STEPS, (epoch + 1) * STEPS)
        total, ramp = job.train.total_steps, job.train.total_steps * job.train.kl_ratio
        expected_anneal = np.mean(np.minimum((steps % total) / ramp, 1.0))
        expected_tfr = np.mean(np.maximum(1.0 - np.maximum(steps // STEPS - 1 + 1, 0) * 0.5, 0.0))
        assert result.history["kl_anneal"][epoch] == pytest.approx(expected_anneal, abs=1e-6)
        assert result.history["tfr"][epoch] == pytest.approx(expected_tfr, abs=1e-6)


def test_resume_rejects_a_change_to_what_defines_the_run(interrupted_then_resumed):
    job, _, result = interrupted_then_resumed
    before = result.run.run_file.read_text()
    with pytest.raises(RunError, match="kl cannot change when resuming"):
        training.train(dataclasses.replace(job, out=None, resume=result.run.path,
                                           resume_changes={"kl": "none"}))
    assert result.run.run_file.read_text() == before


def test_out_of_an_unrelated_folder_is_refused_and_left_as_it_was(tmp_path, generated_dir):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="already exists"):
        training.train(tiny_job(generated_dir, out=tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_start_that_never_saved_can_be_restarted_or_resumed(tmp_path, generated_dir):
    """A folder left by a start killed before its first checkpoint blocks nothing."""
    one_step = dict(epochs=1, steps_per_epoch=1)
    job = tiny_job(generated_dir, out=tmp_path / "run")
    job = dataclasses.replace(job, train=dataclasses.replace(job.train, **one_step))
    killed = RunFolder(tmp_path / "run")
    killed.write_info({**training._new_run_info(job), "train": job.train.to_dict()})
    (killed.path / "log.csv").write_text("epoch,loss\n")
    (killed.path / ".tmp-99-model.keras").write_text("half")
    result = training.train(job)
    assert [c.name for c in result.run.checkpoints()] == ["epoch-0001"]
    assert not (killed.path / ".tmp-99-model.keras").exists()
    for checkpoint in result.run.checkpoints():
        checkpoint.remove()
    resumed = training.train(dataclasses.replace(job, out=None, resume=killed.path))
    assert [c.name for c in resumed.run.checkpoints()] == ["epoch-0001"]
    assert [r["from"] for r in resumed.run.read_info()["resumes"]] == [None]


def test_a_second_process_on_the_same_folder_is_refused(tmp_path, generated_dir):
    run = RunFolder(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunError, match="in use by another training process"):
            training.train(tiny_job(generated_dir, out=run.path))
        assert [p.name for p in run.path.iterdir()] == [".lock"]


def test_a_new_run_that_diverges_stops_with_an_error_and_leaves_no_folder(tmp_path, generated_dir):
    job = tiny_job(generated_dir, out=tmp_path / "run")
    job = dataclasses.replace(job, train=dataclasses.replace(job.train, learning_rate=1e30))
    with pytest.raises(RunError, match="diverged at epoch 1 step .*no checkpoint had been saved, so nothing"):
        training.train(job)
    assert not (tmp_path / "run").exists()
    # A run that never saved, resumed (so started over) and diverging again, keeps its run.json.
    never_saved = RunFolder(tmp_path / "never-saved")
    never_saved.write_info({**training._new_run_info(job), "train": job.train.to_dict()})
    with pytest.raises(RunError, match="no checkpoint had been saved. Start it over with a lower"):
        training.train(dataclasses.replace(job, out=None, resume=never_saved.path))
    assert never_saved.run_file.is_file() and not never_saved.checkpoints()


def file_digests(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()
            and "tensorboard" not in p.parts}


def test_a_resumed_run_that_diverges_damages_nothing(interrupted_then_resumed, tmp_path):
    job, _, result = interrupted_then_resumed
    copy = tmp_path / "run"
    shutil.copytree(result.run.path, copy)
    before = file_digests(copy)
    resume = dataclasses.replace(job, out=None, resume=copy,
                                 resume_changes={"epochs": 4, "learning_rate": 1e30})
    with pytest.raises(RunError, match="diverged at epoch 3 .*last good checkpoint \\(epoch-0002\\)"):
        training.train(resume)
    # run.json, checkpoints, model.keras, log.csv, curves and GIFs untouched: the run
    # resumes as it did before the attempt.
    assert file_digests(copy) == before


def test_a_resume_that_fails_on_its_data_leaves_run_json_as_it_was(interrupted_then_resumed, tmp_path):
    job, _, result = interrupted_then_resumed
    copy = tmp_path / "run"
    shutil.copytree(result.run.path, copy)
    before = file_digests(copy)
    with pytest.raises(DataError, match="TYPO"):
        training.train(dataclasses.replace(job, out=None, resume=copy, data=str(tmp_path / "TYPO"),
                                           resume_changes={"epochs": 4}))
    assert file_digests(copy) == before
    assert json.loads((copy / "run.json").read_text())["data_engine"] in ("tf", "numpy")


class ResourceExhaustedError(Exception):  # the names TensorFlow and JAX raise
    pass


class XlaRuntimeError(Exception):
    pass


def test_out_of_memory_is_told_from_other_errors():
    from keras_cvae.backends import is_out_of_memory

    assert is_out_of_memory(ResourceExhaustedError("OOM when allocating tensor with shape[100000,12,64,64,3]"))
    assert is_out_of_memory(XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(XlaRuntimeError("INVALID_ARGUMENT: wrong shape"))
    assert not is_out_of_memory(ValueError("RESOURCE_EXHAUSTED"))


def test_a_batch_that_does_not_fit_in_memory_ends_in_one_line(tmp_path, generated_dir, monkeypatch):
    def fit(*args, **kwargs):
        raise ResourceExhaustedError("OOM when allocating tensor with shape[100000,12,64,64,3]")

    monkeypatch.setattr(keras.Model, "fit", fit)
    job = tiny_job(generated_dir, out=tmp_path / "run")
    with pytest.raises(RunError, match=r"^batch_size \(--batch-size\) 4: a training step does not fit in memory; "
                                       r"try a smaller batch, e.g. --batch-size 1$"):
        training.train(job)
    assert not (tmp_path / "run").exists()  # nothing trained, nothing kept


def test_resuming_from_an_older_checkpoint_replaces_the_newer_ones_only_once_it_saves(
        interrupted_then_resumed, tmp_path):
    job, _, result = interrupted_then_resumed
    copy = tmp_path / "run"
    shutil.copytree(result.run.path, copy)
    before = file_digests(copy)
    with pytest.raises(RunError, match="no checkpoint 'epoch-0009'; the run has: epoch-0001, epoch-0002"):
        training.train(dataclasses.replace(job, out=None, resume=copy, from_checkpoint="epoch-0009"))
    older = dataclasses.replace(job, out=None, resume=copy, from_checkpoint="epoch-0001")
    with pytest.raises(RunError, match="diverged at epoch 2 "):
        training.train(dataclasses.replace(older, resume_changes={"learning_rate": 1e30}))
    assert file_digests(copy) == before  # the newer checkpoint and everything else untouched
    again = training.train(dataclasses.replace(older, resume_changes={"learning_rate": 1e-6}))
    info = json.loads((copy / "run.json").read_text())
    assert info["resumes"][-1]["from"] == "epoch-0001" and info["epochs_done"] == 2
    assert [c.name for c in again.run.checkpoints()] == ["epoch-0001", "epoch-0002"]
    assert len(again.history["loss"]) == 2
    # Epoch 2 again, at another learning rate: the old epoch-0002 was replaced.
    assert (copy / "checkpoints" / "epoch-0002.weights.h5").read_bytes() != before[Path("checkpoints/epoch-0002.weights.h5")]


def test_a_step_whose_loss_explodes_is_never_saved_as_a_checkpoint(tmp_path, generated_dir, monkeypatch, capsys):
    """A loss far above the recent median keeps backups and the epoch's checkpoint from
    being written (the weights are finite: only the loss tells), so the newest checkpoint
    is one a resume continues from."""
    job = dataclasses.replace(tiny_job(generated_dir, out=tmp_path / "run"), backup_every_steps=1)
    job = dataclasses.replace(job, train=dataclasses.replace(job.train, epochs=1, steps_per_epoch=4))
    monkeypatch.setattr(training, "LossWatch", lambda recent=(): LossWatch(warmup=1, recent=recent))
    original = training.RunCheckpoint.on_train_batch_end

    def exploding_from_step_3(self, batch, logs=None):
        step = self.step + 1
        # The running mean Keras logs when the steps from the third on lose 1000 each.
        mean = logs["loss"] + (1000.0 * (step - 2) / step if step >= 3 else 0.0)
        original(self, batch, {**logs, "loss": mean})

    monkeypatch.setattr(training.RunCheckpoint, "on_train_batch_end", exploding_from_step_3)
    training.train(job)
    run = RunFolder(tmp_path / "run")
    assert [c.name for c in run.checkpoints()] == ["epoch-0000-step-000002"]
    assert json.loads(run.run_file.read_text())["epochs_done"] == 0
    assert not run.model_file.exists()
    err = capsys.readouterr().err
    assert "no backup at epoch 1 step 3: the loss" in err
    assert "epoch 1 is not saved as a checkpoint" in err and "stays epoch-0000-step-000002" in err
    monkeypatch.setattr(training.RunCheckpoint, "on_train_batch_end", original)
    resumed = training.train(dataclasses.replace(job, out=None, resume=run.path))
    assert [c.name for c in resumed.run.checkpoints()] == ["epoch-0001"]
    assert run.model_file.is_file()
