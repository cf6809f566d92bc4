"""The pose task end to end through its commands: train, 630-frame evaluation, export, ONNX prediction."""

import json
from pathlib import Path

import numpy as np
import pytest

from keras_cvae.cli import evaluate, export, predict_onnx, train
from keras_cvae.tasks.pose import dancer
from keras_cvae.tasks.pose import embedded as pose_embedded

pytestmark = pytest.mark.slow  # trains, evaluates and exports


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pose")
    data = pose_embedded.write_dance_dataset(root / "data", sizes={"train": (1, 8), "val": (1, 630)}, seed=2)
    assert train.main(["--task", "pose", "--preset", "pose-tiny", "--data", str(data), "--out", str(root / "run"),
                       "--verbose", "0"]) == 0
    return root, data


def test_a_630_frame_evaluation_scores_every_frame_against_copy_first(pose_run):
    root, data = pose_run
    assert evaluate.main(["--run", str(root / "run"), "--task", "pose", "--samples", "1", "--horizon", "629", "--quiet", "--gif-sequences",
                          "--out", str(root / "eval")]) == 0
    report = json.loads((root / "eval" / "metrics.json").read_text())
    protocol = report["protocol"]
    assert protocol["task"] == "pose" and protocol["split"] == "val" and protocol["horizon"] == 629
    assert len(report["per_frame"]["model_single"]["psnr"]) == 629
    frames, _ = dancer.render_video([2, 1, 0], 630)  # the baseline, computed independently
    frames = frames.astype(np.float64) / 255.0
    copy_first = 10 * np.log10(1.0 / np.mean((frames[1:] - frames[:1]) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(report["per_frame"]["copy_last_frame"]["psnr"], copy_first, rtol=1e-4)
    assert (root / "eval" / "per_frame_metrics.png").is_file()


def test_the_wrong_task_is_refused(pose_run, capsys):
    root, _ = pose_run
    assert evaluate.main(["--run", str(root / "run"), "--task", "bair", "--quiet"]) == 1
    assert "a pose run, not a bair one" in capsys.readouterr().err


def test_export_parity_and_onnx_prediction_from_pose_pngs(pose_run, tmp_path, capsys):
    root, data = pose_run
    assert export.main(["--run", str(root / "run"), "--task", "pose", "--out", str(root / "export")]) == 0
    metadata = json.loads((root / "export" / "metadata.json").read_text())
    assert metadata["task"] == "pose" and metadata["step"]["state"] == []
    labels = tmp_path / "labels"
    labels.mkdir()
    for index in range(4):
        (labels / f"frame{index}.png").write_bytes((data / "val" / "val_label" / f"frame{index}.png").read_bytes())
    out = tmp_path / "predicted"
    assert predict_onnx.main(["--model-dir", str(root / "export"), "--context", str(data / "val" / "val_img" / "frame0.png"),
                              "--conditions", str(labels), "--out", str(out), "--samples", "2"]) == 0
    predicted = np.load(out / "predictions.npz")["frames"]
    assert predicted.shape == (2, 3, 32, 64, 3) and (out / "sample_1.gif").is_file()
    # Inputs of the other task: one line naming both, and nothing written.
    shipped = Path(__file__).resolve().parents[1] / "saved_models" / "svg-small-cpu"
    for model_dir, context, conditions, task in (
        (root / "export", shipped / "example" / "0.png", shipped / "example" / "actions.csv", "pose"),
        (shipped, data / "val" / "val_img" / "frame0.png", labels, "bair"),
    ):
        capsys.readouterr()
        argv = ["--model-dir", str(model_dir), "--context", str(context), "--conditions", str(conditions),
                "--out", str(tmp_path / "other")]
        assert predict_onnx.main(argv) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {model_dir}: a {task} export")
        assert str(conditions) in lines[0] and not (tmp_path / "other").exists()
