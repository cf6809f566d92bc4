"""Runs a Python snippet in a fresh interpreter in which TensorFlow cannot be imported.

A machine that trains on JAX may have no TensorFlow; this is how the tests stand in for one:

    result = run_without_tensorflow("import keras_cvae.data ...", env={"KERAS_BACKEND": "jax"})

Before the snippet, `sys.modules["tensorflow"] = None` (and the same for TFDS) makes every
`import tensorflow` raise ImportError; after it, the run fails if a real TensorFlow module
got loaded anyway.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("tensorflow", "tensorflow_datasets")

_PROLOGUE = "import sys\nfor _name in {blocked!r}:\n    sys.modules[_name] = None\n"
_EPILOGUE = """
_loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in {blocked!r})
assert not _loaded, f"TensorFlow modules were imported: {{_loaded[:5]}}"
"""


def run_without_tensorflow(code: str, env: Optional[dict] = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `code` with `python -c` in the repository root, TensorFlow made unimportable.

    Args:
        code: Python source (dedented here); it runs after TensorFlow is blocked.
        env: Environment variables set over the current environment, e.g.
            {"KERAS_BACKEND": "jax"} (Keras's default backend is TensorFlow).
        timeout: Seconds before the run is killed.

    Returns:
        The `subprocess.CompletedProcess` (text stdout and stderr).

    Raises:
        AssertionError: The snippet failed or imported TensorFlow; the message holds the
            end of its stderr.
    """
    program = _PROLOGUE.format(blocked=BLOCKED) + textwrap.dedent(code) + _EPILOGUE.format(blocked=BLOCKED)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": python_path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"exit {result.returncode}; stderr ends:\n{result.stderr[-3000:]}"
    return result
