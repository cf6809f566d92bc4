"""Export parity: Keras model vs SavedModel (fresh process) vs onnxruntime, whole and stepped."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime
import pytest

from keras_cvae import export
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.export import export_graphs
from keras_cvae.tasks.svg.model import SVG

from model_weights import randomize_weights

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

CONDITION_MEAN = [0.5, -0.2, 0.1, 0.0, 1.0, 2.0, -1.0]
CONDITION_STD = [2.0, 0.5, 1.0, 3.0, 0.25, 1.5, 0.8]
EVALUATION = {"psnr": 21.5, "ssim": 0.7, "samples": 1, "horizon": 3}


# Exported variants: base SVG with the fixed prior, and the learned prior with the lab's
# two extras (hierarchical latents, conditional convolution): between them both state
# layouts and every layer kind go through the export, in two exports rather than four.
# (test_predict_onnx exports base SVG with the learned prior.)
VARIANTS = {
    "fixed": {"prior": "fixed"},
    "extras": {"prior": "learned", "latents": "hierarchical", "conditioning": "cconv"},
}


def untrained_model(variant):
    """An untrained tiny model with random weights and non-trivial condition statistics."""
    config = dataclasses.replace(get_preset("tiny").model, **VARIANTS[variant])
    model = SVG(config, condition_mean=CONDITION_MEAN, condition_std=CONDITION_STD, seed=0)
    randomize_weights(model, seed=0)
    return model


def random_inputs(config, batch, seed):
    rng = np.random.default_rng(seed)
    return {
        "context": rng.uniform(size=(batch, config.n_past, 64, 64, 3)).astype(np.float32),
        "conditions": rng.normal(1.0, 2.0, (batch, config.window_length, 7)).astype(np.float32),
        "noise": rng.normal(size=(batch, config.n_future, config.noise_dim)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def exports(tmp_path_factory, write_run):
    """{variant: (Keras model, export folder)}, each variant exported once per module."""
    result = {}
    for variant in VARIANTS:
        root = tmp_path_factory.mktemp(f"export-{variant}")
        run = write_run(root / "run", untrained_model(variant), "data/pushing")
        (run.path / "eval").mkdir()
        (run.path / "eval" / "metrics.json").write_text(json.dumps(EVALUATION))
        model = run.load_model()
        out_dir = root / "saved_models" / "tiny"
        export.export_model(model, run, out_dir)
        result[variant] = (model, out_dir)
    return result


@pytest.fixture(params=list(VARIANTS))
def exported(request, exports):
    """(Keras model, export folder) of one variant."""
    return exports[request.param]


def session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def keras_prediction(model, inputs):
    return np.asarray(model(inputs, training=False))


def test_export_writes_every_file_and_no_temporary(exported):
    _, out_dir = exported
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "metadata.json", "model.onnx", "saved_model", "step.onnx"
    ]
    assert [p.name for p in out_dir.parent.iterdir()] == ["tiny"]


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_matches_keras(exported, batch):
    model, out_dir = exported
    inputs = random_inputs(model.config, batch, seed=batch)
    (frames,) = session(out_dir / "model.onnx").run(["frames"], inputs)
    expected = keras_prediction(model, inputs)
    assert frames.shape == (batch, model.config.n_future, 64, 64, 3)
    np.testing.assert_allclose(frames, expected, atol=1e-4, rtol=0)
    # The tolerance means something only if the inputs move the output far more than it.
    mean_path = keras_prediction(model, {**inputs, "noise": np.zeros_like(inputs["noise"])})
    assert np.abs(expected - mean_path).max() > 1e-3
    assert expected.std() > 1e-2


def test_saved_models_in_a_fresh_process_match_keras(exports, tmp_path):
    """Every variant's SavedModel, loaded by tf.saved_model.load where keras_cvae never ran."""
    cases = {}
    for variant, (model, out_dir) in exports.items():
        for batch in (1, 7):
            name = f"{variant}-b{batch}"
            cases[name] = (model, out_dir / "saved_model", random_inputs(model.config, batch, seed=10 + batch))
            np.savez(tmp_path / f"{name}.npz", **cases[name][2])
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        for name, path in {[(name, str(case[1])) for name, case in cases.items()]!r}:
            serve = tf.saved_model.load(path).signatures["serving_default"]
            inputs = dict(np.load({str(tmp_path)!r} + f"/{{name}}.npz"))
            out = serve(**{{k: tf.constant(v) for k, v in inputs.items()}})
            np.save({str(tmp_path)!r} + f"/{{name}}-out.npy", out["frames"].numpy())
        assert "keras_cvae" not in sys.modules
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, (model, _, inputs) in cases.items():
        frames = np.load(tmp_path / f"{name}-out.npy")
        np.testing.assert_allclose(frames, keras_prediction(model, inputs), atol=1e-4, rtol=0,
                                   err_msg=name)


def stepped_prediction(step_session, metadata, inputs):
    """Follows the step protocol of metadata.json with onnxruntime."""
    n_past = metadata["model"]["n_past"]
    context, conditions, noise = inputs["context"], inputs["conditions"], inputs["noise"]
    batch, horizon = context.shape[0], noise.shape[1]
    state = {
        entry["input"]: np.zeros([batch, *entry["shape"][1:]], np.float32)
        for entry in metadata["step"]["state"]
    }
    outputs_by_input = {entry["input"]: entry["output"] for entry in metadata["step"]["state"]}
    predictions, previous = [], None
    for t in range(1, n_past + horizon):
        frame = context[:, t - 1] if t <= n_past else previous
        feed = {
            "frame": frame,
            "conditions": conditions[:, t - 1 : t + 1],
            "noise": noise[:, t - n_past] if t >= n_past else np.zeros((batch, noise.shape[2]), np.float32),
            "is_context": np.full(batch, t <= n_past),
            **state,
        }
        names = ["next_frame", *outputs_by_input.values()]
        result = dict(zip(names, step_session.run(names, feed)))
        state = {name: result[output] for name, output in outputs_by_input.items()}
        previous = result["next_frame"]
        if t >= n_past:
            predictions.append(previous)
    return np.stack(predictions, axis=1)


@pytest.mark.parametrize("batch", [1, 7])
def test_step_onnx_stepped_equals_whole_rollout(exported, batch):
    model, out_dir = exported
    metadata = json.loads((out_dir / "metadata.json").read_text())
    inputs = random_inputs(model.config, batch, seed=20 + batch)
    stepped = stepped_prediction(session(out_dir / "step.onnx"), metadata, inputs)
    np.testing.assert_allclose(stepped, keras_prediction(model, inputs), atol=1e-4, rtol=0)
    (whole,) = session(out_dir / "model.onnx").run(["frames"], inputs)
    np.testing.assert_allclose(stepped, whole, atol=1e-4, rtol=0)


def test_step_onnx_keeps_the_last_context_skips(exported):
    """Without is_context on the last context frame the skips (and output) must change."""
    model, out_dir = exported
    metadata = json.loads((out_dir / "metadata.json").read_text())
    inputs = random_inputs(model.config, 2, seed=30)
    step_session = session(out_dir / "step.onnx")
    state = {e["input"]: np.zeros([2, *e["shape"][1:]], np.float32) for e in metadata["step"]["state"]}
    feed = {"frame": inputs["context"][:, 0], "conditions": inputs["conditions"][:, :2],
            "noise": inputs["noise"][:, 0], **state}
    kept = step_session.run(["next_state_skip64"], {**feed, "is_context": np.zeros(2, bool)})[0]
    fresh = step_session.run(["next_state_skip64"], {**feed, "is_context": np.ones(2, bool)})[0]
    np.testing.assert_array_equal(kept, state["state_skip64"])
    assert np.abs(fresh).max() > 0


def test_metadata_describes_the_exported_files(exported):
    model, out_dir = exported
    metadata = json.loads((out_dir / "metadata.json").read_text())
    config = model.config
    assert metadata["task"] == "bair" and metadata["model"] == config.to_dict()
    assert metadata["evaluation"] == EVALUATION
    assert metadata["training_data"] == "data/pushing"
    np.testing.assert_allclose(metadata["conditions"]["mean"], CONDITION_MEAN, rtol=1e-6)
    np.testing.assert_allclose(metadata["conditions"]["std"], CONDITION_STD, rtol=1e-6)
    assert "inside" in metadata["conditions"]["normalisation"]
    for file_name, section in (("model.onnx", "prediction"), ("step.onnx", "step")):
        onnx_session = session(out_dir / file_name)
        for nodes, described in ((onnx_session.get_inputs(), metadata[section]["inputs"]),
                                 (onnx_session.get_outputs(), metadata[section]["outputs"])):
            actual = {node.name: ["batch" if i == 0 else d for i, d in enumerate(node.shape)]
                      for node in nodes}
            expected = {d["name"]: ["batch", *d["shape"][1:]] for d in described}
            assert actual == expected
    prediction = {d["name"]: d["shape"] for d in metadata["prediction"]["inputs"]}
    assert prediction == {
        "context": [None, config.n_past, 64, 64, 3],
        "conditions": [None, config.n_past + config.n_future, 7],
        "noise": [None, config.n_future, config.noise_dim],
    }
    expected_state = 2 * config.predictor_layers + 4
    expected_state += 2 * config.prior_layers if config.prior == "learned" else 0
    assert len(metadata["step"]["state"]) == expected_state


def test_check_rejects_a_file_onnxruntime_cannot_load(exported, tmp_path):
    model, out_dir = exported
    broken = tmp_path / "broken"
    shutil.copytree(out_dir, broken)
    (broken / "step.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(export.ExportError, match="step.onnx"):
        export.check_export(model, broken, export.ExportConfig(), export_graphs(model))


def test_failed_export_leaves_no_folder(tmp_path, monkeypatch, write_run):
    run = write_run(tmp_path / "run", untrained_model("fixed"), "data/pushing")
    model = run.load_model()

    def fail(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(export.writers, "write_onnx", fail)
    out_dir = tmp_path / "saved_models" / "x"
    with pytest.raises(RuntimeError, match="simulated"):
        export.export_model(model, run, out_dir, export.ExportConfig(saved_model=False))
    assert list(out_dir.parent.iterdir()) == []


def test_no_random_op_in_the_onnx_graphs(exported):
    import onnx

    _, out_dir = exported
    for file_name in ("model.onnx", "step.onnx"):
        graph = onnx.load(str(out_dir / file_name)).graph
        random_ops = {node.op_type for node in graph.node if node.op_type.startswith("Random")}
        assert not random_ops, (file_name, random_ops)


def count_ops(graph, op_types):
    """Nodes of the given types in an ONNX graph, its Loop/If bodies included."""
    count = 0
    for node in graph.node:
        count += node.op_type in op_types
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else list(attribute.graphs)
            count += sum(count_ops(subgraph, op_types) for subgraph in subgraphs)
    return count


def test_whole_prediction_onnx_holds_one_step_in_a_loop(exported):
    """model.onnx loops over one copy of the encoder and decoder (as many convolutions as
    step.onnx), which is what keeps the full-size conversion within memory."""
    import onnx

    _, out_dir = exported
    whole = onnx.load(str(out_dir / "model.onnx")).graph
    step = onnx.load(str(out_dir / "step.onnx")).graph
    convolutions = {"Conv", "ConvTranspose"}
    assert count_ops(whole, {"Loop"}) >= 1
    assert count_ops(step, convolutions) > 0
    assert count_ops(whole, convolutions) == count_ops(step, convolutions)


@pytest.mark.parametrize("n_past", [1, 3])
def test_prediction_function_matches_keras_for_other_context_lengths(n_past):
    """The loop's context/prediction bookkeeping against the Keras model's Python rollout."""
    config = dataclasses.replace(get_preset("tiny").model, n_past=n_past)
    model = SVG(config, condition_mean=CONDITION_MEAN, condition_std=CONDITION_STD, seed=0)
    randomize_weights(model, seed=n_past)
    inputs = random_inputs(config, 3, seed=40 + n_past)
    frames = export_graphs(model).predict(**inputs)["frames"].numpy()
    assert frames.shape == (3, config.n_future, 64, 64, 3)
    np.testing.assert_allclose(frames, keras_prediction(model, inputs), atol=1e-4, rtol=0)
