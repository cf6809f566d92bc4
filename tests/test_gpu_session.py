"""The GPU session's dress rehearsal and the way back, end to end, as they run for real.

The rehearsal (started in the background at collection, see background.py) runs
`benchmarks/gpu_session.sh rehearse` exactly as the GPU machine runs the
real session: Keras installed from wheel files into a target folder, TensorFlow
unimportable, JAX (so it trains and evaluates with no TensorFlow, through the scripts); then `benchmarks/gpu_return.py` turns the returned files into an
exported, evaluated model. The return limits' checker is tested on its own too.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import background  # noqa: E402
from gpu_session import check_return_limits  # noqa: E402


def test_the_return_limits_name_every_breach(tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "deep.txt").write_text("x")
    (tmp_path / "odd name.txt").write_text("x")
    (tmp_path / "big.bin").write_bytes(b"\0" * (16 * 2**20 + 1))
    for index in range(6):
        (tmp_path / f"f{index}.txt").write_text("x")
    problems = "\n".join(check_return_limits(tmp_path))
    assert "9 files, more than 8" in problems
    assert "a/b/c/deep.txt: more than 2 folders deep" in problems
    assert "odd name.txt: not a plain name" in problems
    assert "big.bin: 16777217 bytes" in problems
    (tmp_path / "a" / "b" / "c" / "deep.txt").unlink()
    for path in [tmp_path / "odd name.txt", tmp_path / "big.bin"]:
        path.unlink()
    assert check_return_limits(tmp_path) == []


@pytest.mark.slow
@pytest.mark.background("rehearsal")
def test_the_rehearsal_returns_within_the_limits_and_the_way_back_ships_its_model(tmp_path, capsys, background_runs):
    # conftest.py started the rehearsal in the background after collection (background.py).
    rehearsal = background_runs["rehearsal"]
    status, output = background.finish(rehearsal, timeout=600)
    assert status == 0, output[-6000:]
    out = rehearsal.scratch / "returned"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["deadline_s"] == background.REHEARSAL_DEADLINE_S
    assert summary["elapsed_s"] <= summary["deadline_s"] + 15  # it holds, give or take a process exit
    assert {name: stage["status"] for name, stage in summary["stages"].items()} == {
        name: "ran" for name in ("environment", "data", "bench", "flagship", "evaluate", "package")}
    assert summary["stages"]["environment"]["backend"] == "jax"
    first = summary["stages"]["bench"]["configs"]["float32-b4"]
    assert first["status"] == "ran" and first["pipeline_batches_per_s"] > 0
    for branch in ("teacher_forced", "free_running"):  # each compiles at its first step
        assert first[branch]["first_step_s"] > first[branch]["step_s_median"] > 0
        assert first[branch]["sequences_per_s"] > 0
    flagship = summary["stages"]["flagship"]
    # However busy the machine, the budgeted run ends in time with a model to return.
    assert flagship["exit"] == 0 and flagship["time_limit"]["minutes"] == 0.25
    # Trained and evaluated on JAX without TensorFlow; the way back loads it on TensorFlow.
    evaluated = summary["stages"]["evaluate"]
    assert evaluated["protocol"]["backend"] == "jax" and evaluated["protocol"]["sequences"] == 4
    assert np.isfinite(evaluated["summary"]["model_single"]["psnr"]["mean"])
    assert summary["return_limits"] == "ok" and check_return_limits(out) == []
    assert (out / "flagship" / "weights.json").is_file()
    import gpu_return

    assert gpu_return.main([str(tmp_path), "--out", str(tmp_path / "nowhere")]) == 1
    assert "flagship/run.json: missing" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()

    export = tmp_path / "export"
    # In this process (TensorFlow is the tests' backend): the way back as its command runs it.
    assert gpu_return.main([str(out), "--out", str(export), "--run-dir", str(tmp_path / "run"), "--samples", "2",
                            "--max-sequences", "4", "--data", summary["stages"]["data"]["path"]]) == 0
    metadata = json.loads((export / "metadata.json").read_text())
    summary = metadata["evaluation"]["summary"]
    assert metadata["evaluation"]["protocol"]["horizon"] == 10 and "copy_last_frame" in summary
    assert (export / "model.onnx").is_file() and (export / "example" / "11.png").is_file()
    assert (tmp_path / "run" / "gpu_session.json").is_file()
    # The example beside the export is what predict_onnx takes, as for the shipped model.
    from keras_cvae.cli import predict_onnx

    example = export / "example"
    argv = ["--model-dir", str(export), "--context", str(example / "0.png"), str(example / "1.png"),
            "--conditions", str(example / "actions.csv"), str(example / "endeffector_positions.csv"),
            "--samples", "1", "--out", str(tmp_path / "predicted")]
    assert predict_onnx.main(argv) == 0
    assert np.loadtxt(example / "actions.csv", delimiter=",").shape == (12, 4)
    assert metadata["model"] == json.loads((tmp_path / "run" / "run.json").read_text())["model"]
