"""Exports a training run as a SavedModel, ONNX files (whole prediction and single step) and metadata.json.

    python scripts/export.py                         # newest run under runs/ -> saved_models/<run name>
    python scripts/export.py --run runs/NAME --out saved_models/NAME --opset 17

Every exported file is loaded in its runtime and compared with the Keras model before the
output folder appears (written to a temporary folder, then renamed). Export runs on the
TensorFlow backend (SavedModel and tf2onnx need it), whichever backend trained the run.
A pose run (--task pose) exports its whole video_length-frame rollout and its step.
"""

import argparse
import sys

from keras_cvae.cli.common import HelpFormatter
from keras_cvae.startup import select_backend
from keras_cvae.tasks import DEFAULT_TASK, TASKS


def main(argv=None):
    # SavedModel and tf2onnx need TensorFlow, and the backend is fixed once Keras is imported.
    select_backend("tensorflow")
    from keras_cvae.export import ExportConfig, ExportError, export_run
    from keras_cvae.run_folder import RunError

    defaults = ExportConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--run", default=None, help="run folder (None: the newest run under runs/)")
    parser.add_argument("--out", default=None, help="output folder (None: saved_models/<run name>)")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help=f"the task the run must be ({', '.join(TASKS)}); an error if it is another "
                        f"(default: the run's own task from run.json, {DEFAULT_TASK} for runs without one)")
    parser.add_argument("--opset", type=int, default=defaults.opset, help="ONNX opset")
    parser.add_argument("--skip-savedmodel", action="store_true", help="write only the ONNX files and metadata")
    parser.add_argument("--tolerance", type=float, default=defaults.tolerance,
                        help="largest difference to the Keras model the export checks accept")
    args = parser.parse_args(argv)
    try:
        config = ExportConfig(opset=args.opset, saved_model=not args.skip_savedmodel, tolerance=args.tolerance)
        out_dir, differences = export_run(args.run, args.out, config, task=args.task)
    except (RunError, ExportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    checks = ", ".join(f"{name} {difference:.2g}" for name, difference in differences.items())
    print(f"exported to {out_dir} (max difference to Keras: {checks})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
