#!/usr/bin/env bash
# Set up and run the whole test suite (CPU, tiny models; about 9 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
# The suite runs several processes at once (see tests/background.py): one compute thread
# each, so that no process's idle threads spin on a core another process needs.
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
