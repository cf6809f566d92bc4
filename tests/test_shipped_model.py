"""The model shipped in saved_models/: it runs from a fresh clone with onnxruntime only, on
the example inputs beside it, and its recorded evaluation is its own."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_cvae.cli import predict_onnx
from keras_cvae.tasks.svg.onnx_files import ExportedModel

SHIPPED = Path(__file__).resolve().parents[1] / "saved_models" / "svg-small-cpu"
EXAMPLE = SHIPPED / "example"


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def test_the_shipped_metadata_holds_its_evaluation_beside_copy_last():
    metadata = json.loads((SHIPPED / "metadata.json").read_text())
    summary = metadata["evaluation"]["summary"]
    assert metadata["evaluation"]["protocol"]["horizon"] == 10
    assert metadata["evaluation"]["protocol"]["samples"] == 5
    assert summary["model_best_of_n"]["psnr"]["mean"] >= summary["model_single"]["psnr"]["mean"]
    assert summary["model_single"]["psnr"]["mean"] > summary["copy_last_frame"]["psnr"]["mean"]


def test_predict_onnx_runs_the_shipped_model_on_its_example(tmp_path):
    out = tmp_path / "predicted"
    argv = ["--model-dir", str(SHIPPED), "--context", str(EXAMPLE / "0.png"), str(EXAMPLE / "1.png"),
            "--conditions", str(EXAMPLE / "actions.csv"), str(EXAMPLE / "endeffector_positions.csv"),
            "--samples", "2", "--out", str(out)]
    assert predict_onnx.main(argv) == 0
    frames = np.load(out / "predictions.npz")["frames"]
    assert frames.shape == (2, 10, 64, 64, 3)
    # The example's true future is shipped too: the prediction must be about it, nowhere
    # near a random or blank frame.
    truth = np.stack([np.asarray(Image.open(EXAMPLE / f"{t}.png"), np.float32) / 255 for t in range(2, 12)])
    assert psnr(frames[0], truth) > 18.0
    assert psnr(frames[0], np.zeros_like(truth)) < 12.0
    model = ExportedModel(SHIPPED)
    assert model.noise_dim == model.metadata["model"]["z_dim"]  # flat latents


@pytest.mark.parametrize("name", ["model.onnx", "step.onnx"])
def test_each_shipped_file_fits_the_clone_budget(name):
    assert (SHIPPED / name).stat().st_size < 25 * 2**20
