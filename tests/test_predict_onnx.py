"""predict_onnx.py: input forms, outputs equal to the Keras model, no TensorFlow, bad input."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_cvae import export
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG

from model_weights import randomize_weights

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

REPO = Path(__file__).resolve().parents[1]
COMMAND = "keras_cvae.cli.predict_onnx"
CONDITION_MEAN = [0.5, -0.2, 0.1, 0.0, 1.0, 2.0, -1.0]
CONDITION_STD = [2.0, 0.5, 1.0, 3.0, 0.25, 1.5, 0.8]
SEQUENCE_ROWS = 30  # The lab's CSVs hold 30 rows; the model uses the first n_past + n_future.
BLOCKED = ("tensorflow", "keras", "tf2onnx", "tf_keras")

# Runs predict_onnx.py with imports of TensorFlow/Keras made impossible, and checks at exit
# that none of them got into sys.modules by another route.
GUARD = textwrap.dedent(f"""
    import atexit, os, runpy, sys
    BLOCKED = {BLOCKED!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked import of " + name)

    def check_modules():
        loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        if loaded:
            sys.stderr.write("imported: " + ", ".join(loaded) + "\\n")
            sys.stderr.flush()
            os._exit(3)

    sys.meta_path.insert(0, Blocker())
    atexit.register(check_modules)
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, write_run):
    """(Keras model, export folder) of an untrained tiny learned-prior model (ONNX only)."""
    root = tmp_path_factory.mktemp("predict-onnx")
    preset = get_preset("tiny")
    model = SVG(preset.model, condition_mean=CONDITION_MEAN, condition_std=CONDITION_STD, seed=1)
    randomize_weights(model, seed=0)
    run = write_run(root / "run", model)
    model = run.load_model()
    out_dir = root / "model"
    export.export_model(model, run, out_dir, export.ExportConfig(saved_model=False))
    return model, out_dir


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """A sequence folder in the lab layout whose frames have few colours (exact in a GIF)."""
    folder = tmp_path_factory.mktemp("sequence")
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (8, 3), dtype=np.uint8)
    frames = palette[rng.integers(0, 8, (4, 8, 8))].repeat(8, axis=1).repeat(8, axis=2)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index}.png")
    actions = rng.normal(size=(SEQUENCE_ROWS, 4)).astype(np.float32)
    positions = rng.normal(1.0, 0.5, (SEQUENCE_ROWS, 3)).astype(np.float32)
    write_csv(folder / "actions.csv", actions)
    write_csv(folder / "endeffector_positions.csv", positions)
    return folder, frames, np.concatenate([actions, positions], axis=1)


def write_csv(path, values):
    path.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in values))


def run_script(*args, guard=True):
    """Runs the predict_onnx command in a fresh process (with the import guard)."""
    command = [sys.executable, "-c", GUARD, COMMAND] if guard else [sys.executable, "-m", COMMAND]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)})


def keras_frames(model, context_uint8, conditions, noise):
    samples = noise.shape[0]
    inputs = {
        "context": np.repeat(context_uint8[None].astype(np.float32) / 255.0, samples, axis=0),
        "conditions": np.repeat(conditions[None], samples, axis=0),
        "noise": noise,
    }
    return np.asarray(model(inputs, training=False))


def test_guard_catches_a_tensorflow_import(tmp_path):
    """The guard used below must be able to fail."""
    offender = tmp_path / "offender.py"
    offender.write_text("import tensorflow\n")
    result = subprocess.run([sys.executable, "-c", GUARD, "offender"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "blocked import of tensorflow" in result.stderr


def test_prediction_without_tensorflow_matches_keras(exported, sequence, tmp_path):
    model, model_dir = exported
    folder, frames, conditions = sequence
    out = tmp_path / "out"
    result = run_script("--model-dir", model_dir, "--context", folder, "--conditions", folder,
                        "--samples", 3, "--seed", 5, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    config = model.config
    saved = np.load(out / "predictions.npz")
    assert saved["frames"].shape == (3, config.n_future, 64, 64, 3)
    assert saved["noise"].shape == (3, config.n_future, config.z_dim)
    assert np.abs(saved["noise"][0] - saved["noise"][1]).max() > 0
    rows = config.n_past + config.n_future
    np.testing.assert_allclose(saved["conditions"], conditions[:rows], rtol=0, atol=0)
    expected = keras_frames(model, frames[: config.n_past], conditions[:rows], saved["noise"])
    np.testing.assert_allclose(saved["frames"], expected, atol=1e-4, rtol=0)

    expected_uint8 = np.round(np.clip(expected, 0, 1) * 255).astype(int)
    for sample in range(3):
        for step in range(config.n_future):
            png = np.asarray(Image.open(out / f"sample_{sample}" / f"frame_{config.n_past + step:02d}.png"))
            assert np.abs(png.astype(int) - expected_uint8[sample, step]).max() <= 1
        with Image.open(out / f"sample_{sample}.gif") as gif:
            # Pillow merges identical consecutive frames and adds up their durations.
            durations = []
            for index in range(gif.n_frames):
                gif.seek(index)
                durations.append(gif.info["duration"])
            assert sum(durations) == pytest.approx((config.n_past + config.n_future) * 1000 / 4.0)
            assert gif.size == (64, 64)


def test_same_seed_same_future_and_other_seed_another(exported, sequence, tmp_path):
    _, model_dir = exported
    folder, _, _ = sequence
    outputs = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        args = ("--model-dir", model_dir, "--context", folder, "--conditions", folder,
                "--seed", seed, "--out", tmp_path / name)
        assert run_script(*args, guard=False).returncode == 0
        outputs.append(np.load(tmp_path / name / "predictions.npz")["frames"])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert np.abs(outputs[0] - outputs[2]).max() > 0


def _predict_in_process(model_dir, context, conditions, out):
    """Calls the library function the script calls (the no-TensorFlow test covers the script)."""
    from keras_cvae.onnx_inference import PredictConfig, predict_files

    config = PredictConfig(model_dir=str(model_dir), context=tuple(map(str, context)),
                           conditions=tuple(map(str, conditions)), out_dir=str(out), seed=7)
    return predict_files(config)[0]


def test_every_context_and_condition_form_gives_the_same_prediction(exported, sequence, tmp_path):
    _, model_dir = exported
    folder, frames, conditions = sequence
    gif = tmp_path / "context.gif"
    Image.fromarray(frames[0]).save(gif, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]])
    npz_uint8 = tmp_path / "uint8.npz"
    np.savez(npz_uint8, frames=frames)
    npz_float = tmp_path / "float.npz"
    np.savez(npz_float, context=frames.astype(np.float32) / 255.0)
    seven_columns = tmp_path / "conditions.csv"
    write_csv(seven_columns, conditions)
    pngs = [folder / f"{i}.png" for i in range(len(frames))]
    pair = [folder / "actions.csv", folder / "endeffector_positions.csv"]
    reference = _predict_in_process(model_dir, [folder], [folder], tmp_path / "ref")
    forms = {
        "pngs+pair": (pngs, pair), "gif+folder": ([gif], [folder]),
        "npz uint8+7 columns": ([npz_uint8], [seven_columns]),
        "npz float+pair": ([npz_float], pair),
    }
    for name, (context, condition_files) in forms.items():
        frames_out = _predict_in_process(model_dir, context, condition_files, tmp_path / name)
        np.testing.assert_allclose(frames_out, reference, atol=1e-6, rtol=0, err_msg=name)


def bad_cases(model_dir, sequence_folder, tmp_path):
    """{case: (arguments, text the error must name)}."""
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(small)
    short = tmp_path / "short.csv"
    write_csv(short, np.zeros((3, 7)))
    not_onnx = tmp_path / "not_onnx"
    shutil.copytree(model_dir, not_onnx)
    (not_onnx / "model.onnx").write_text("this is not an ONNX file\n")
    one_png = sequence_folder / "0.png"
    good = ("--context", sequence_folder, "--conditions", sequence_folder)
    return {
        "wrong image size": (("--model-dir", model_dir, "--context", small, small,
                              "--conditions", sequence_folder), "small.png: image is 32x32"),
        "too few context frames": (("--model-dir", model_dir, "--context", one_png,
                                    "--conditions", sequence_folder), "1 context frame(s)"),
        "too few condition rows": (("--model-dir", model_dir, "--context", sequence_folder,
                                    "--conditions", short), "short.csv: 3 condition rows"),
        "model not ONNX": (("--model-dir", not_onnx, *good), "model.onnx: not an ONNX model"),
    }


def test_bad_input_gives_one_clear_error_each(exported, sequence, tmp_path):
    _, model_dir = exported
    folder, _, _ = sequence
    for case, (args, message) in bad_cases(model_dir, folder, tmp_path).items():
        result = run_script(*args, "--out", tmp_path / "out", guard=False)
        assert result.returncode != 0, case
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.stderr[-1000:])
        assert message in lines[0], (case, lines[0])
        assert not (tmp_path / "out").exists(), case
