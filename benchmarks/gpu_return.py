"""The way back: a GPU session's returned files (or any run folder) to a shipped model.

    python benchmarks/gpu_return.py RETURNED --out saved_models/NAME   # RETURNED: the session's $OUT
    python benchmarks/gpu_return.py runs/RUN --out saved_models/NAME   # a run trained here

In one command: (1) the returned float16 weight parts are joined into the model that the
returned run.json describes and written as a run folder (`--run-dir`, default
runs/<NAME>), its data pointed at the embedded dataset, whose test split the session's
generated data shares; (2) the run is evaluated 2 -> 10 on the test split of the embedded
dataset (or `--data`): 1 sample and best of `--samples`, copy-last beside; (3) it is exported on TensorFlow with the parity
check (SavedModel, model.onnx, step.onnx, metadata.json with the evaluation); (4) one
test sequence goes beside it as `example/` (context and true frames, conditions, and the
truth-vs-prediction GIF and strip), as the shipped model has.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_cvae.startup import select_backend  # noqa: E402

RETURNED_FILES = ("log.csv", "curves.png", "sample.gif")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path,
                        help="a GPU session's returned folder (summary.json, flagship/ with weight "
                        "parts and run.json) or a run folder (run.json, model.keras)")
    parser.add_argument("--out", type=Path, required=True, help="the export folder, e.g. saved_models/NAME")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where returned parts become a run folder (default: runs/<out name>)")
    parser.add_argument("--data", default=None,
                        help="dataset whose test split is scored and gives the example (default: the "
                        "embedded dataset, generated once into the cache, as the shipped model's)")
    parser.add_argument("--samples", type=int, default=5, help="samples per sequence for best of N (default: 5)")
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="evaluate only the first sequences of the test split (default: all)")
    return parser.parse_args(argv)


def run_from_parts(returned: Path, run_dir: Path):
    """Writes a run folder holding the model whose weight parts came back.

    Args:
        returned: The session's returned folder (its `flagship/` holds the parts).
        run_dir: The run folder to create; it must not exist.

    Returns:
        The `RunFolder`.
    """
    from keras_cvae import tasks
    from keras_cvae.files import atomic_save
    from keras_cvae.run_folder import RunError, RunFolder
    from keras_cvae.weight_parts import join_weights

    parts = returned / "flagship"
    if not (parts / "run.json").is_file():
        raise RunError(f"{parts / 'run.json'}: missing; is {returned} a GPU session's returned folder?")
    if run_dir.exists():
        raise RunError(f"{run_dir}: already exists; choose another --run-dir")
    info = json.loads((parts / "run.json").read_text())
    # The session's data was generated there with the embedded dataset's seed: the same
    # test split. Evaluation here reads the embedded dataset.
    info["trained_on"] = info.get("data")
    info["data"] = None
    model = tasks.task_of(info).build_model(info, seed=0)
    join_weights(model, parts)
    staging = run_dir.with_name(f".{run_dir.name}.returning")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    run = RunFolder(staging)
    atomic_save(run.model_file, lambda path: model.save(path, include_optimizer=False))
    for name in RETURNED_FILES:
        if (parts / name).is_file():
            shutil.copy(parts / name, staging / name)
    if (returned / "summary.json").is_file():
        shutil.copy(returned / "summary.json", staging / "gpu_session.json")
    run.write_info(info)
    staging.rename(run_dir)
    return RunFolder(run_dir)


def write_example(data, out: Path, evaluation: dict):
    """Copies test sequence 0 of `data` (frames, conditions) and its GIF and strip into `out/example/`."""
    from PIL import Image

    from keras_cvae.data import iterate_numpy, make_dataset

    example = out / "example"
    example.mkdir(exist_ok=True)
    batch = next(iterate_numpy(make_dataset(data, "test", n_past=2, n_future=10, batch_size=1, training=False)))
    for t, frame in enumerate(batch["frames"][0]):
        Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(example / f"{t}.png")
    conditions = batch["conditions"][0]
    np.savetxt(example / "actions.csv", conditions[:, :4], delimiter=",", fmt="%.8g")
    np.savetxt(example / "endeffector_positions.csv", conditions[:, 4:], delimiter=",", fmt="%.8g")
    for path in map(Path, evaluation["files"]):
        if path.name.startswith("sequence-0000"):  # "sequence-0000.gif", "sequence-0000-strip.png"
            shutil.copy(path, example / path.name.replace("sequence-0000", "truth-vs-prediction"))


def main(argv=None):
    args = parse_args(argv)
    select_backend("tensorflow")  # export needs it; evaluation runs on it too
    from keras_cvae.data import DataError
    from keras_cvae.evaluation import EvaluationError
    from keras_cvae.export import ExportError
    from keras_cvae.run_folder import RunError
    from keras_cvae.weight_parts import WeightPartsError

    try:
        return way_back(args)
    except (DataError, EvaluationError, ExportError, RunError, WeightPartsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def way_back(args) -> int:
    """Parts or a run folder -> run folder -> evaluation -> export with its example."""
    from keras_cvae.data.embedded import ensure_embedded_dataset
    from keras_cvae.evaluation import EvalConfig, evaluate_run
    from keras_cvae.export import export_run
    from keras_cvae.run_folder import RunFolder

    source = args.source
    if (source / "model.keras").is_file():
        run = RunFolder(source)
    else:
        run = run_from_parts(source, args.run_dir or ROOT / "runs" / args.out.name)
    print(f"run folder: {run.path}")
    data = args.data or str(ensure_embedded_dataset())
    evaluation = evaluate_run(EvalConfig(run=str(run.path), data=data, split="test", n_past=2, horizon=10,
                                         samples=args.samples,
                                         max_sequences=args.max_sequences, progress=True))
    print(evaluation["table"])
    out, differences = export_run(run.path, args.out)
    print(f"exported to {out} (max difference to Keras: "
          + ", ".join(f"{name} {value:.2g}" for name, value in differences.items()) + ")")
    write_example(data, out, evaluation)
    print(f"example sequence: {out / 'example'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
