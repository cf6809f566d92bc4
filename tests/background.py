"""The suite's slowest, self-contained runs, started in the background at collection.

Each is a separate process whose test only checks its result, so conftest.py starts the
ones whose tests are selected as soon as the tests are collected, moves those tests to
the end, and every other test overlaps them; at a lower priority, they fill the cores the
suite's own process leaves free:

- the JAX re-run of the `jax`-marked tests (several minutes on 2 cores);
- the GPU session's rehearsal (`benchmarks/gpu_session.sh rehearse`, three to four minutes alone);
- TensorFlow's steps on 2 and on 1 devices (`tensorflow_two_devices.py`, about a minute);
- one tiny model written on TensorFlow, loaded and trained on JAX (`backend_parity.py`);
- a training killed at several moments and resumed, beside it the same run uninterrupted
  (`crash_chain.py`).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JAX_MARKER = "jax and not tf_only"


@dataclass(frozen=True)
class BackgroundRun:
    """A running process, the file its output goes to and its scratch folder."""

    process: subprocess.Popen
    log: Path
    scratch: Path


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="keras-cvae-background-"))


# The runs yield the CPU to the suite's own process (and their children inherit it): that
# process is one thread that takes longer than any run, so it sets the suite's time, and at
# equal priority the runs, five processes or more, would leave it a fraction of a core.
BACKGROUND_NICENESS = 10


def _start(command, env, scratch: Path) -> BackgroundRun:
    log = scratch / "output.log"
    with open(log, "w") as output:
        # `nice`, not a preexec_fn: the suite's process has threads, and forking Python code
        # into the child of a threaded process can deadlock.
        process = subprocess.Popen(["nice", "-n", str(BACKGROUND_NICENESS), *command], cwd=ROOT,
                                   env={**os.environ, **env, "SCRATCH": str(scratch)},
                                   stdout=output, stderr=subprocess.STDOUT, text=True)
    return BackgroundRun(process, log, scratch)


# The tests' models are tiny and take a few steps: XLA's compile, not the steps, is the
# cost on a CPU, and its cheapest optimisation levels halve it.
QUICK_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def quick_jax_env(devices: int = 1, cache=None) -> dict:
    """Environment for a JAX process of the tests: quick XLA compiles on `devices` CPU devices.

    Args:
        devices: CPU devices the process sees.
        cache: A folder where compiled programs are kept and found again by the processes
            that share it (tests build the same tiny models many times); None: the caller's.
    """
    env = {"XLA_FLAGS": f"{QUICK_XLA_FLAGS} --xla_force_host_platform_device_count={devices}"}
    if cache is not None:
        env.update({"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"})
    return env


def start_jax_rerun() -> BackgroundRun:
    """`pytest -m "jax and not tf_only"` with KERAS_BACKEND=jax."""
    scratch = _scratch()
    return _start([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", JAX_MARKER,
                   str(ROOT / "tests")], {"KERAS_BACKEND": "jax", **quick_jax_env(cache=scratch / "jax-cache")},
                  scratch)


REHEARSAL_DEADLINE_S = 900  # niced, it shares one core with the other runs while the suite runs


def start_rehearsal() -> BackgroundRun:
    """The Keras wheels fetched if missing, then the rehearsal, its files under SCRATCH/returned."""
    wheel = f"optree-*-cp{sys.version_info.major}{sys.version_info.minor}-*.whl"
    script = (f'ls .whl/{wheel} >/dev/null 2>&1 || bash benchmarks/gpu_session.sh wheels >/dev/null; '
              'OUT="$SCRATCH/returned" exec bash benchmarks/gpu_session.sh rehearse --commit rehearsal '
              f'--deadline {REHEARSAL_DEADLINE_S}')
    scratch = _scratch()
    return _start(["bash", "-c", script], {"PYTHON": sys.executable, **quick_jax_env(cache=scratch / "jax-cache")},
                  scratch)


def _start_tensorflow_script(script: str) -> BackgroundRun:
    """tests/`script` on TensorFlow, the repository importable."""
    return _start([sys.executable, str(ROOT / "tests" / script)],
                  {"KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}, _scratch())


def start_tensorflow_two_devices() -> BackgroundRun:
    """tests/tensorflow_two_devices.py: two steps on 2 and on 1 TensorFlow devices."""
    return _start_tensorflow_script("tensorflow_two_devices.py")


def start_backend_parity() -> BackgroundRun:
    """tests/backend_parity.py: one tiny model written on TensorFlow, then loaded and trained on JAX."""
    return _start_tensorflow_script("backend_parity.py")


def start_crash_chain() -> BackgroundRun:
    """tests/crash_chain.py: a training killed and resumed, beside the same one uninterrupted."""
    return _start_tensorflow_script("crash_chain.py")


# Each run's name, as tests name it in their `background(name)` marker: its starter.
STARTERS = {"jax_rerun": start_jax_rerun, "rehearsal": start_rehearsal,
            "tensorflow_two_devices": start_tensorflow_two_devices, "backend_parity": start_backend_parity,
            "crash_chain": start_crash_chain}


def finish(run: BackgroundRun, timeout: float) -> tuple:
    """Waits for the run: (exit status, its output). The scratch folder stays for the test."""
    try:
        status = run.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(run)
        raise
    return status, run.log.read_text()


def stop(run: BackgroundRun):
    """Kills the run if it is still going and removes its scratch folder."""
    if run.process.poll() is None:
        run.process.kill()
        run.process.wait()
    shutil.rmtree(run.scratch, ignore_errors=True)
