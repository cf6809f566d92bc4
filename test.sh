#!/usr/bin/env bash
# Set up and run the whole test suite (CPU, tiny models; about 9 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
