"""Starts TensorFlow without the GPU-probe error it logs on every machine without a GPU.

On a machine with no NVIDIA driver, TensorFlow's first device listing logs
`E0000 ... cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)` straight to
the process's stderr. Neither TF_CPP_MIN_LOG_LEVEL=2 nor CUDA_VISIBLE_DEVICES removes it
(level 3 does, but also hides every real C++ error), so the scripts start TensorFlow with
file descriptor 2 captured and write back everything but that one line.
"""

import glob
import importlib.util
import os
import sys
import tempfile

CUDA_PROBE_NOISE = "failed call to cuInit"


def _no_gpu_device() -> bool:
    # Where an NVIDIA device node exists, a failing cuInit is a real driver problem.
    return not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/dxg")


def start_tensorflow_quietly():
    """Imports TensorFlow and lists its devices, dropping the cuInit line from stderr.

    Also hides TensorFlow's C++ INFO and WARNING logs unless TF_CPP_MIN_LOG_LEVEL is set;
    errors stay visible. Does nothing where TensorFlow is already imported or cannot be,
    and keeps the cuInit line where a GPU device node exists.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    if not _no_gpu_device():
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the probe that logs the line
        except ImportError:
            pass  # a broken install: the NumPy engine takes over, as without TensorFlow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if CUDA_PROBE_NOISE not in line)
            if kept:
                os.write(2, kept.encode())
