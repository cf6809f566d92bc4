#!/usr/bin/env bash
# The work of one session on the lent GPU machine (JAX, no TensorFlow, results under $OUT).
# Run through the device tool from the repository root, with the Keras wheels in .whl/
# (see ../shared/DESIGN.md "The GPU machine"; carry [".whl"]):
#   bash benchmarks/gpu_session.sh bench          # svg training step: fp32/bf16 x batch 16/64/100
#   bash benchmarks/gpu_session.sh train [FLAGS]  # flagship run; its weights come back in parts
# Back here: keras_cvae.weight_parts.join_weights puts the parts into the run's model, and
# scripts/export.py exports it on TensorFlow.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax KERAS_CVAE_DATA=/tmp/keras_cvae_data
out="${OUT:?set by the device tool: the folder whose files come back}"
stage="${1:-bench}"
shift || true
case "$stage" in
  bench)
    for batch in 16 64 100; do
      for precision in "" --mixed-precision; do  # --mixed-precision is bfloat16 on JAX
        python3 benchmarks/bench_train_step.py --preset svg --configs jax --batch-size "$batch" \
          $precision --out "$out/bench"
      done
    done ;;
  train)
    run=/tmp/flagship
    # medium: the largest preset whose model.onnx (19.6 MiB) can ship in the repository.
    python3 scripts/train.py --backend jax --preset medium --precision mixed_bfloat16 \
      --data-engine numpy --out "$run" --verbose 2 "$@"
    # float32 weights (~23 MB for medium, ~91 MB for svg) exceed one returned file: float16 parts of 15 MiB.
    python3 -c "import sys
from keras_cvae.run_folder import RunFolder
from keras_cvae.weight_parts import split_weights
split_weights(RunFolder(sys.argv[1]).load_model(), sys.argv[2])" "$run" "$out/flagship"
    cp "$run/run.json" "$run/log.csv" "$run/curves.png" "$out/flagship/" ;;
  *)
    echo "error: unknown stage '$stage' (bench or train)" >&2
    exit 2 ;;
esac
