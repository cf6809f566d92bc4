"""Evaluation: no peeking, best/mean/single consistency, baseline, outputs, bad input, script."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import make_dataset
from keras_cvae.evaluation import (EvalConfig, EvalResult, EvaluationError, check_batch_matches_model, evaluate_model,
                                   evaluate_run, make_rollout, summarize)
from keras_cvae.evaluation.protocol import sample_noise
from keras_cvae.evaluation.scoring import METRIC_NAMES, SpreadOfSamples
from keras_cvae.run_folder import RunError
from keras_cvae.tasks.svg.config import SVGConfig, get_preset
from keras_cvae.tasks.svg.model import SVG

from model_weights import randomize_weights

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

N_SEQUENCES = 5  # with batch size 3 the last batch is padded
SAMPLES = 3


def random_sequences(count, seed):
    rng = np.random.default_rng(seed)
    return [
        {
            "image_aux1": rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
            "image_main": np.zeros((30, 64, 64, 3), np.uint8),
            "action": rng.normal(size=(30, 4)).astype(np.float32),
            "endeffector_pos": rng.normal(size=(30, 3)).astype(np.float32),
        }
        for _ in range(count)
    ]


def write_dataset(root, sequences):
    bair.write_sequences(root / "train" / bair.file_name(0, 0), sequences[:1])
    bair.write_sequences(root / "test" / bair.file_name(0, len(sequences) - 1), sequences)
    return root


def psnr_numpy(pred, target):
    mse = np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2, axis=(-3, -2, -1))
    return 10.0 * np.log10(1.0 / mse)


@pytest.fixture(scope="module")
def tiny_config():
    return get_preset("tiny").model


@pytest.fixture(scope="module")
def tiny_model(tiny_config):
    return SVG(tiny_config, seed=0)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("evaldata"), random_sequences(N_SEQUENCES, seed=1))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_config, dataset_dir, write_run):
    model = SVG(tiny_config, seed=0)
    randomize_weights(model, seed=1)  # so that the samples differ (see model_weights)
    return write_run(tmp_path_factory.mktemp("runs") / "tiny", model, dataset_dir)


def load_script():
    from keras_cvae.cli import evaluate

    return evaluate


@pytest.fixture(scope="module")
def evaluated(tiny_run, tmp_path_factory):
    """scripts/evaluate.py's main on the tiny run, predictions saved: (metrics, stdout, out)."""
    out = tmp_path_factory.mktemp("eval")
    argv = ["--run", str(tiny_run.path), "--samples", str(SAMPLES), "--batch-size", "3", "--seed", "3",
            "--out", str(out / "eval"), "--save-predictions", str(out / "predictions.npz"),
            "--gif-sequences", "0", "4", "--quiet"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = load_script().main(argv)
    assert code == 0
    return json.loads((out / "eval" / "metrics.json").read_text()), printed.getvalue(), out


@pytest.mark.jax
def test_no_peeking_future_frames_do_not_change_predictions(tmp_path, tiny_config, tiny_model):
    n_past, horizon = tiny_config.n_past, tiny_config.n_future
    original = random_sequences(3, seed=2)
    changed = random_sequences(3, seed=2)
    rng = np.random.default_rng(9)
    for sequence in changed:
        # Everything the model must not see: future frames, and any data after the horizon.
        sequence["image_aux1"][n_past:] = rng.integers(0, 256, (30 - n_past, 64, 64, 3), dtype=np.uint8)
        sequence["action"][n_past + horizon :] += 5.0
        sequence["endeffector_pos"][n_past + horizon :] -= 5.0
    model = tiny_model
    rollout = make_rollout(model)
    results = []
    for name, sequences in (("a", original), ("b", changed)):
        root = write_dataset(tmp_path / name, sequences)
        dataset = make_dataset(root, "test", n_past=n_past, n_future=horizon, batch_size=2, training=False)
        results.append(
            evaluate_model(model, dataset, n_past=n_past, horizon=horizon, samples=2, seed=5,
                           batch_size=2, keep_all=True, rollout=rollout)
        )
    first, second = results
    for index in range(3):
        assert not np.array_equal(first.kept[index][0][n_past:], second.kept[index][0][n_past:])
        np.testing.assert_array_equal(first.kept[index][1], second.kept[index][1])
    assert not np.allclose(first.model_scores["psnr"], second.model_scores["psnr"])


@pytest.mark.jax
def test_best_mean_single_are_consistent_with_independent_psnr(evaluated):
    report, _, out = evaluated
    saved = np.load(out / "predictions.npz")
    n_past = int(saved["n_past"])
    future = saved["ground_truth"][:, n_past:] / 255.0
    per_sample = psnr_numpy(saved["predictions"] / 255.0, future[None]).mean(axis=2)  # [S, N]
    best = np.asarray(report["per_sequence"]["model_best_of_n"]["psnr"])
    mean = np.asarray(report["per_sequence"]["model_mean_of_n"]["psnr"])
    single = np.asarray(report["per_sequence"]["model_single"]["psnr"])
    rounding = 0.01  # the npz holds uint8 frames, the report float ones
    assert np.all(best + rounding >= per_sample.max(axis=0))
    assert np.all(best + 1e-9 >= mean)
    assert np.all(mean + rounding >= per_sample.min(axis=0))
    np.testing.assert_allclose(mean, per_sample.mean(axis=0), atol=rounding)
    np.testing.assert_allclose(single, per_sample[0], atol=rounding)
    for name in ("ssim", "psnr_per_channel"):
        assert np.all(
            np.asarray(report["per_sequence"]["model_best_of_n"][name]) + 1e-9
            >= np.asarray(report["per_sequence"]["model_mean_of_n"][name])
        )


@pytest.mark.jax
def test_copy_last_baseline_matches_numpy(evaluated):
    report, _, out = evaluated
    saved = np.load(out / "predictions.npz")
    n_past, horizon = int(saved["n_past"]), int(saved["horizon"])
    truth = saved["ground_truth"] / 255.0
    copy = np.repeat(truth[:, n_past - 1 : n_past], horizon, axis=1)
    expected = psnr_numpy(copy, truth[:, n_past:])
    np.testing.assert_allclose(report["per_frame"]["copy_last_frame"]["psnr"], expected.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(report["per_sequence"]["copy_last_frame"]["psnr"], expected.mean(axis=1), atol=1e-4)
    per_channel = np.mean(
        10 * np.log10(1 / np.mean((copy - truth[:, n_past:]) ** 2, axis=(-3, -2))), axis=-1
    )
    np.testing.assert_allclose(report["summary"]["copy_last_frame"]["psnr_per_channel"]["mean"],
                               per_channel.mean(), atol=1e-4)


def test_script_table_metrics_json_and_npz_round_trip(evaluated, tiny_run, dataset_dir):
    written, printed, out = evaluated
    protocol = written["protocol"]
    assert protocol["context_frames"] == 2 and protocol["horizon"] == 3
    assert protocol["samples"] == SAMPLES and protocol["seed"] == 3
    assert protocol["split"] == "test" and protocol["sequences"] == N_SEQUENCES
    assert protocol["checkpoint"] == str(tiny_run.model_file)
    assert Path(protocol["data"]) == dataset_dir and protocol["context_frames_excluded"] is True
    assert written["time"]["rollout_seconds"] > 0
    assert set(written["summary"]) == {"copy_last_frame", "model_single", "model_mean_of_n", "model_best_of_n"}
    for name in ("per_frame_metrics.png", "sequence-0000.gif", "sequence-0000-strip.png", "sequence-0004.gif"):
        assert (out / "eval" / name).stat().st_size > 0

    saved = np.load(out / "predictions.npz")
    assert saved["predictions"].dtype == np.uint8
    assert saved["predictions"].shape == (SAMPLES, N_SEQUENCES, 3, 64, 64, 3)
    assert saved["ground_truth"].shape == (N_SEQUENCES, 5, 64, 64, 3)
    assert "uint8" in str(saved["pixel_format"])
    recomputed = psnr_numpy(saved["predictions"][0] / 255.0, saved["ground_truth"][:, 2:] / 255.0).mean()
    assert abs(recomputed - written["summary"]["model_single"]["psnr"]["mean"]) < 0.01
    for row in ("copy last context frame", "model, 1 sample", "model, mean of 3 samples",
                "model, best of 3 samples"):
        assert f"| {row} |" in printed
    assert "2 context frames" in printed and "excluded from the scores" in printed
    assert "3 predicted frames" in printed and "seed 3" in printed


@pytest.mark.jax
def test_horizon_28_on_30_frame_sequences(tiny_run, tmp_path):
    report = evaluate_run(
        EvalConfig(run=str(tiny_run.path), horizon=28, samples=1, batch_size=2, max_sequences=2,
                   out=str(tmp_path), gif_sequences=(), progress=False)
    )
    assert report["protocol"]["horizon"] == 28 and report["protocol"]["sequences"] == 2
    assert len(report["per_frame"]["model_single"]["ssim"]) == 28


def test_summarize_picks_best_sample_per_sequence():
    scores = np.array([[[1.0, 1.0], [5.0, 5.0]], [[3.0, 3.0], [2.0, 2.0]]])  # [S=2, N=2, H=2]
    result = EvalResult(
        n_past=2, horizon=2,
        model_scores={name: scores for name in ("psnr", "psnr_per_channel", "ssim")},
        baseline_scores={name: scores[0] for name in ("psnr", "psnr_per_channel", "ssim")},
    )
    per_sequence = summarize(result)["per_sequence"]
    assert per_sequence["model_best_of_n"]["psnr"] == [3.0, 5.0]
    assert per_sequence["model_mean_of_n"]["psnr"] == [2.0, 3.5]
    assert per_sequence["model_single"]["psnr"] == [1.0, 5.0]


def run_script(argv, capsys):
    code = load_script().main(argv)
    return code, capsys.readouterr()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--horizon", "29"], "longer than the 30-frame sequences"),
        (["--n-past", "0"], "n_past (--n-past) must be at least 1"),
    ],
)
def test_bad_protocol_gives_one_error_line(tiny_run, tmp_path, capsys, extra, message):
    code, captured = run_script(["--run", str(tiny_run.path), "--out", str(tmp_path), *extra], capsys)
    assert code == 1
    assert captured.err.strip().startswith("error: ") and message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_missing_run_and_checkpoint(tmp_path, tiny_config, dataset_dir, capsys, write_run):
    code, captured = run_script(["--run", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and "does not exist" in captured.err
    code, captured = run_script(["--runs-root", str(tmp_path / "empty")], capsys)
    assert code == 1 and "no training runs found" in captured.err
    run = write_run(tmp_path / "no-model", SVG(tiny_config, seed=0), dataset_dir)
    run.model_file.unlink()
    code, captured = run_script(["--run", str(run.path)], capsys)
    assert code == 1 and "model.keras: missing" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    with pytest.raises(RunError):
        evaluate_run(EvalConfig(run=str(run.path), progress=False))


def test_data_that_does_not_fit_the_model(tmp_path, tiny_config, dataset_dir, write_run):
    config = SVGConfig.from_dict({**tiny_config.to_dict(), "condition_dim": 5})
    run = write_run(tmp_path / "run", SVG(config, seed=0), dataset_dir)
    with pytest.raises(EvaluationError, match=r"\(test split\): conditions have 7 values per frame, "
                       "the model expects 5"):
        evaluate_run(EvalConfig(run=str(run.path), out=str(tmp_path / "eval"), progress=False))
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_frame_size_that_does_not_fit_the_model(tiny_config):
    batch = {"frames": np.zeros((1, 5, 64, 64, 3)), "conditions": np.zeros((1, 5, 7))}
    check_batch_matches_model(batch, tiny_config, "data")
    grey = SVGConfig.from_dict({**tiny_config.to_dict(), "channels": 1})
    with pytest.raises(EvaluationError, match=r"^data: frames are \(64, 64, 3\), the model expects \(64, 64, 1\)$"):
        check_batch_matches_model(batch, grey, "data")


@pytest.mark.jax
def test_compiled_rollout_equals_calling_the_model(tiny_config, tiny_model):
    horizon = 3
    model = tiny_model
    rng = np.random.default_rng(4)
    context = rng.random((2, 2, 64, 64, 3), dtype=np.float32)
    conditions = rng.normal(size=(2, 2 + horizon, 7)).astype(np.float32)
    noise = rng.normal(size=(2, horizon, tiny_config.z_dim)).astype(np.float32)
    expected = np.asarray(model({"context": context, "conditions": conditions, "noise": noise}))
    got = np.asarray(make_rollout(model)(context, conditions, noise))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_malformed_record_is_a_data_error(tmp_path, tiny_run):
    from keras_cvae.data import DataError

    from test_bair_tfrecord import hand_written_example, write_raw

    sequences = random_sequences(3, seed=6)
    records = [hand_written_example(s, **({"image_bytes": 100} if i == 1 else {})) for i, s in enumerate(sequences)]
    path = tmp_path / "ds" / "test" / "traj_0_to_2.tfrecords"
    write_raw(path, records)
    bair.write_sequences(tmp_path / "ds" / "train" / bair.file_name(0, 0), sequences[:1])
    with pytest.raises(DataError, match=rf"^{path}: record 1: image_aux1 missing or not 12288 bytes"):
        evaluate_run(EvalConfig(run=str(tiny_run.path), data=str(tmp_path / "ds"), samples=1,
                                batch_size=2, out=str(tmp_path / "eval"), progress=False))


def test_the_predictions_file_gets_the_npz_suffix_and_a_folder_is_refused(tmp_path):
    from keras_cvae.evaluation.outputs import predictions_path

    assert predictions_path(tmp_path / "preds") == tmp_path / "preds.npz"
    assert predictions_path(tmp_path / "a.npz") == tmp_path / "a.npz"
    (tmp_path / "taken").mkdir()
    with pytest.raises(EvaluationError, match="taken: is a folder"):
        predictions_path(tmp_path / "taken")


def test_a_run_folder_that_cannot_be_written_points_at_out(tmp_path, write_run, monkeypatch):
    import keras_cvae.paths

    run = write_run(tmp_path / "run", SVG(get_preset("tiny").model, seed=0))
    real_access = keras_cvae.paths.os.access
    monkeypatch.setattr(keras_cvae.paths.os, "access",
                        lambda path, mode: False if Path(path) == run.path else real_access(path, mode))
    with pytest.raises(EvaluationError, match=rf"{run.path / 'eval'}: cannot be written .*pass --out"):
        evaluate_run(EvalConfig(run=str(run.path), progress=False))
    assert not (run.path / "eval").exists()


def test_metrics_of_a_diverged_model_are_valid_json(tmp_path):
    from keras_cvae.evaluation.outputs import write_metrics

    path = write_metrics(tmp_path, {"summary": {"psnr": [float("nan"), 21.5, np.float32("inf")]}, "n": 3})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"summary": {"psnr": [None, 21.5, None]}, "n": 3}


def test_spread_of_samples_equals_the_mean_over_pairs():
    rng = np.random.default_rng(4)
    samples = rng.uniform(size=(4, 2, 3, 8, 8, 3))  # [S, B, H, height, width, C]
    spread = SpreadOfSamples()
    for sample in samples:
        spread.add(sample)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = np.sqrt(np.mean([np.mean((samples[i] - samples[j]) ** 2, axis=(2, 3, 4)) for i, j in pairs],
                               axis=0))
    np.testing.assert_allclose(spread.diversity(), expected, rtol=1e-10)
    same = SpreadOfSamples()
    for _ in range(3):
        same.add(samples[0])
    np.testing.assert_allclose(same.diversity(), 0.0, atol=1e-6)
    single = SpreadOfSamples()
    single.add(samples[0])
    assert single.diversity() is None


def test_diversity_is_the_distance_between_the_samples_of_each_sequence(tiny_model, tiny_config, dataset_dir):
    # A stand-in rollout whose samples are known: frames set by the noise of each step.
    pattern = np.random.default_rng(0).random((64, 64, 3)).astype("float32")

    def frames_of(noise):  # [..., H, noise_dim] -> [..., H, 64, 64, 3]
        return 0.5 + 0.4 * np.tanh(noise[..., :1, None, None]) * pattern

    n_past, horizon, samples = tiny_config.n_past, tiny_config.n_future, 4
    dataset = make_dataset(dataset_dir, "test", n_past=n_past, n_future=horizon, batch_size=2, training=False)
    result = evaluate_model(tiny_model, dataset, n_past=n_past, horizon=horizon, samples=samples, seed=6,
                            batch_size=2, keep_all=True, rollout=lambda context, conditions, noise: frames_of(noise))
    noise = sample_noise(6, range(N_SEQUENCES), samples, horizon, tiny_config.latent_shape)
    predicted = frames_of(noise)  # [S, N, H, 64, 64, 3]
    pairs = [(i, j) for i in range(samples) for j in range(i + 1, samples)]
    expected = np.sqrt(np.mean([np.mean((predicted[i] - predicted[j]) ** 2, axis=(2, 3, 4)) for i, j in pairs],
                               axis=0))
    np.testing.assert_allclose(result.diversity, expected, rtol=1e-5)
    report = summarize(result)["diversity"]
    np.testing.assert_allclose(report["per_frame"], expected.mean(axis=0), rtol=1e-5)
    truth = np.stack([result.kept[i][0][n_past:] for i in range(N_SEQUENCES)]) / 255.0
    np.testing.assert_allclose(report["sample_rms_error"], np.sqrt(np.mean((predicted - truth) ** 2)), rtol=1e-4)


@pytest.mark.jax
def test_the_report_says_how_different_the_samples_are(evaluated):
    report, printed, _ = evaluated
    assert len(report["diversity"]["per_frame"]) == report["protocol"]["horizon"]
    assert report["diversity"]["mean"] > 1e-3  # the samples differ through z
    assert "Sample diversity: two samples of a sequence differ by" in printed


def test_one_sample_reports_no_diversity():
    scores = np.zeros((1, 2, 3))
    result = EvalResult(n_past=2, horizon=3, model_scores={name: scores for name in METRIC_NAMES},
                        baseline_scores={name: scores[0] for name in METRIC_NAMES})
    assert "diversity" not in summarize(result)


def quick_eval(run, out, **changes):
    settings = dict(run=str(run.path), samples=1, batch_size=2, max_sequences=2, out=str(out), gif_sequences=(),
                    progress=False)
    return evaluate_run(EvalConfig(**{**settings, **changes}))


def test_out_is_replaced_whole_and_never_a_folder_of_the_users(tiny_run, tmp_path, monkeypatch):
    from keras_cvae.evaluation import outputs
    from keras_cvae.evaluation import run as evaluation_run

    out = tmp_path / "eval"
    quick_eval(tiny_run, out, gif_sequences=(1,))
    first = (out / "metrics.json").read_text()
    assert (out / "sequence-0001.gif").is_file()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill while the pictures are written
    monkeypatch.setattr(evaluation_run, "write_pictures", killed)
    with pytest.raises(KeyboardInterrupt):
        quick_eval(tiny_run, out, seed=9)
    monkeypatch.undo()
    assert (out / "metrics.json").read_text() == first  # the old evaluation, whole
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["eval"]

    quick_eval(tiny_run, out, seed=9)  # a new evaluation replaces the old one's files
    assert not (out / "sequence-0001.gif").exists()
    assert json.loads((out / "metrics.json").read_text())["protocol"]["seed"] == 9

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    with pytest.raises(EvaluationError, match="not an evaluation folder"):
        quick_eval(tiny_run, mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]

    with outputs.destination_lock(out):  # another evaluation is writing it
        with pytest.raises(EvaluationError, match="another evaluation is writing it"):
            quick_eval(tiny_run, out)
