"""Starts TensorFlow without the start-up lines it logs before its log level applies.

Importing TensorFlow logs `oneDNN custom operations are on ...`, `Could not find cuda
drivers on your machine ...` and absl's `All log messages before absl::InitializeLog() ...`
straight to the process's stderr, before absl reads TF_CPP_MIN_LOG_LEVEL, so even level 3
shows them. On a machine with no NVIDIA driver the first device listing also logs
`E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)`, which only level 3 removes,
hiding every real C++ error with it. So the scripts start TensorFlow with file descriptor 2
captured and write back what TF_CPP_MIN_LOG_LEVEL would have let through, less the cuInit
line where no GPU exists. oneDNN itself stays as TensorFlow chooses.
"""

import glob
import importlib.util
import os
import re
import sys
import tempfile

CUDA_PROBE_NOISE = "failed call to cuInit"
ABSL_EARLY_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# absl's line prefix: severity letter, MMDD, time, thread id, file:line].
_ABSL_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ [^\s\]]+:\d+\] ")
_SEVERITIES = "IWEF"


def _no_gpu_device() -> bool:
    # Where an NVIDIA device node exists, a failing cuInit is a real driver problem.
    return not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/dxg")


def _min_log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0  # TensorFlow reads an unparsable level as 0 too


def kept_lines(lines, min_log_level: int, drop_cuinit: bool):
    """The start-up lines TF_CPP_MIN_LOG_LEVEL would have let through.

    Args:
        lines: stderr lines written while TensorFlow started, line ends included.
        min_log_level: TF_CPP_MIN_LOG_LEVEL: 0 keeps everything, 1 drops INFO, 2 also
            WARNING, 3 also ERROR (FATAL always stays).
        drop_cuinit: Whether to drop the cuInit failure (a machine without a GPU).

    Returns:
        The lines to write back, in order. Lines not in absl's format (Python's own
        warnings, say) are always kept.
    """
    kept = []
    for line in lines:
        if drop_cuinit and CUDA_PROBE_NOISE in line:
            continue
        if min_log_level >= 1 and line.rstrip("\r\n") == ABSL_EARLY_BANNER:
            continue
        match = _ABSL_LINE.match(line)
        if match and _SEVERITIES.index(match.group(1)) < min(min_log_level, 3):
            continue
        kept.append(line)
    return kept


def start_tensorflow_quietly():
    """Imports TensorFlow and lists its devices, dropping the start-up lines from stderr
    that TF_CPP_MIN_LOG_LEVEL does not reach (see the module docstring).

    TF_CPP_MIN_LOG_LEVEL defaults to 2 (INFO and WARNING hidden, errors shown); a level
    the user set wins. Does nothing where TensorFlow is already imported or cannot be.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the probe that logs the cuInit line
        except ImportError:
            pass  # a broken install: the NumPy engine takes over, as without TensorFlow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(kept_lines(lines, _min_log_level(), _no_gpu_device()))
            if kept:
                os.write(2, kept.encode())
