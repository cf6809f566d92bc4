#!/usr/bin/env bash
# The main job on a CPU: set up, train the small preset on the embedded pushing dataset
# with cyclical KL annealing, then evaluate it (2 past -> 10 future, PSNR/SSIM, GIFs).
# The embedded dataset is generated once into ~/.cache/keras_cvae (or $KERAS_CVAE_DATA).
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
run="runs/demo-$(date +%Y%m%d-%H%M%S)"
# First, in seconds: the shipped model (onnxruntime only) on its example sequence.
example=saved_models/svg-small-cpu/example
.venv/bin/python scripts/predict_onnx.py --model-dir saved_models/svg-small-cpu \
    --context "$example/0.png" "$example/1.png" \
    --conditions "$example/actions.csv" "$example/endeffector_positions.csv" --samples 3 --out "$run-shipped"
.venv/bin/python scripts/train.py --preset small --kl cyclical --out "$run" "$@"
.venv/bin/python scripts/evaluate.py --run "$run" --samples 3
