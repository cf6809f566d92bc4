"""Predicts future frames with an exported ONNX model: onnxruntime, numpy, pillow, imageio only.

    python scripts/predict_onnx.py --model-dir saved_models/NAME --samples 3 --out predictions
        --context data/test/traj/0 --conditions data/test/traj/0

--context: PNG files, a folder of PNGs, a GIF or an .npz (the first n_past frames are used).
--conditions: one 7-column CSV, actions.csv + endeffector_positions.csv, or their folder.
Writes OUT/predictions.npz, OUT/sample_K.gif (context + prediction) and OUT/sample_K/frame_TT.png.
TensorFlow is never imported.

A pose export (metadata.json "task": "pose") rolls out from a first frame, one frame per
pose label after the first (any number, with step.onnx):

    python scripts/predict_onnx.py --model-dir saved_models/POSE_RUN --out predictions
        --context val/val_img/frame0.png --conditions val/val_label
"""

import argparse
import sys

from keras_cvae.cli.common import HelpFormatter
from keras_cvae.onnx_inference import InferenceError, PredictConfig, predict_files


def main(argv=None):
    defaults = PredictConfig(model_dir="", context=(), conditions=())
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--model-dir", required=True, help="export folder (metadata.json, model.onnx)")
    parser.add_argument("--context", nargs="+", required=True,
                        help="context frames: PNG files, a folder of PNGs, a GIF or an .npz (pose: the "
                        "first frame's PNG)")
    parser.add_argument("--conditions", nargs="+", required=True,
                        help="one 7-column CSV, or actions.csv endeffector_positions.csv, or their folder "
                        "(pose: the pose-label PNGs of every frame, the first frame's included, or "
                        "their folder)")
    parser.add_argument("--out", default=defaults.out_dir, help="output folder")
    parser.add_argument("--samples", type=int, default=defaults.samples, help="futures to draw")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the noise")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="frames per second of the GIFs")
    args = parser.parse_args(argv)
    try:
        config = PredictConfig(
            model_dir=args.model_dir, context=tuple(args.context), conditions=tuple(args.conditions),
            out_dir=args.out, samples=args.samples, seed=args.seed, fps=args.fps,
        )
        frames, written = predict_files(config)
    except InferenceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"predicted {frames.shape[0]} sample(s) of {frames.shape[1]} frames; wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
