#!/usr/bin/env bash
# The GPU session as one command, and its rehearsal on a CPU in the same conditions.
#
#   bash benchmarks/gpu_session.sh wheels             # once, here: Keras wheels into .whl/ (GPU's Python and this one)
#   OUT=DIR bash benchmarks/gpu_session.sh rehearse   # here: tiny preset, seconds of training, TensorFlow blocked
#   bash benchmarks/gpu_session.sh [FLAGS]            # on the GPU machine (through the device tool, carry [".whl"])
#
# Keras, namex and optree are installed from .whl/ into a fresh target folder with
# `pip --no-index --no-deps`, as the GPU machine (no Keras, no TensorFlow, no network)
# needs; the rehearsal also makes `import tensorflow` fail. FLAGS go to
# benchmarks/gpu_session.py (--deadline SECONDS, --commit SHA, --out DIR); results land in
# $OUT and come back through `python benchmarks/gpu_return.py $OUT --out saved_models/NAME`.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0)
mode=gpu
case "${1:-}" in
  wheels)
    # The GPU machine's Python 3.12 wheels, then this machine's (for the rehearsal).
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d .whl "${WHEELS[@]}"
    "${PYTHON:-.venv/bin/python}" -m pip download -q --no-deps --only-binary=:all: -d .whl "${WHEELS[@]}"
    ls .whl
    exit 0 ;;
  rehearse) mode=rehearse; shift ;;
esac
python="${PYTHON:-$([ "$mode" = rehearse ] && echo .venv/bin/python || echo python3)}"
scratch="$(mktemp -d /tmp/keras-cvae-session.XXXXXX)"
"$python" -m pip install -q --no-index --no-deps --find-links .whl --target "$scratch/site" \
  "${WHEELS[@]}"
path="$scratch/site"
if [ "$mode" = rehearse ]; then
  for module in tensorflow tensorflow_datasets; do  # as absent as on the GPU machine
    mkdir -p "$scratch/blocked/$module"
    echo 'raise ImportError("blocked: the GPU machine has no TensorFlow")' > "$scratch/blocked/$module/__init__.py"
  done
  path="$path:$scratch/blocked"
fi
export PYTHONPATH="$path:$PWD" KERAS_BACKEND=jax KERAS_CVAE_DATA="$scratch/cache" PYTHONUNBUFFERED=1
exec "$python" benchmarks/gpu_session.py --mode "$mode" --work "$scratch/work" "$@"
