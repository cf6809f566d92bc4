"""Training on several processes (one per host, or several on one) with JAX.

JAX runs one program over the devices of every process: each process runs the same Python
code and feeds its own rows of every global batch (`data.shards`), and the step's
collectives (NCCL on GPUs, gloo on CPUs) make it one step over the global batch, equal to
the single-process step. This module joins the processes (`join`), tells a process its
share (`this_shard`) and holds them at a common point (`barrier`).

A process that dies cannot take part in a collective, and the others would wait for it
forever. Where the collective sees the connection close (gloo), it fails at once, and the
survivor stops with one line (`stop_line`). Otherwise JAX's coordination service (in
process 0) watches every process's heartbeats: once one has sent none for
`ProcessGroup.timeout_seconds`, every other process is told, logs "Terminating process
because the JAX distributed service detected fatal errors ... another task died" and
exits; without process 0 the others lose the service and exit so at once. A process that
fails with an error exits at once instead of waiting at JAX's shutdown barrier for the
others (they wait on it), see `end_now_if_shared`.
"""

import os
import sys
from dataclasses import dataclass
from typing import Mapping, Optional

import keras

from keras_cvae.data.shards import Shard

# Keras's own settings of `keras.distribution.initialize`, honoured here too.
ADDRESSES_VARIABLE = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
COUNT_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"
INDEX_VARIABLE = "KERAS_DISTRIBUTION_PROCESS_ID"
DEFAULT_TIMEOUT_SECONDS = 60
# What a collective or JAX's coordination client says when another process is gone: gloo
# (CPUs) fails at once on the closed connection, the others (NCCL) at the heartbeat timeout.
LOST_PROCESS_SIGNS = ("Gloo", "NCCL", "Connection reset by peer", "heartbeat", "coordination service")
# Processes of a job start at different moments (a scheduler, a slow host, a compile):
# joining waits this long for all of them before it gives up.
JOIN_TIMEOUT_SECONDS = 300


class ProcessGroupError(ValueError):
    """The processes are not described completely, or cannot be joined."""


@dataclass(frozen=True)
class ProcessGroup:
    """The processes that train one model together.

    Args:
        coordinator: HOST:PORT where process 0 serves JAX's coordination service; every
            process must reach it (process 0's host name or address, a free port).
        count: Processes in the job.
        index: This process's index, 0 to `count - 1`; process 0 writes the run folder.
        timeout_seconds: Seconds without a heartbeat after which a process is taken to be
            dead and the others end; also how long a process that ends waits for the
            others at JAX's shutdown.
    """

    coordinator: str
    count: int
    index: int
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS

    def __post_init__(self):
        host, _, port = self.coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise ProcessGroupError(f"coordinator (--coordinator) must be HOST:PORT, got {self.coordinator!r}")
        if self.count < 1:
            raise ProcessGroupError(f"processes (--num-processes) must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ProcessGroupError(f"process id (--process-id) must be in 0..{self.count - 1}, got {self.index}")
        if self.timeout_seconds < 1:
            raise ProcessGroupError(f"process timeout (--process-timeout) must be at least 1 s, got "
                                    f"{self.timeout_seconds}")


def process_group(coordinator: Optional[str] = None, count: Optional[int] = None, index: Optional[int] = None,
                  timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
                  environ: Optional[Mapping[str, str]] = None) -> Optional[ProcessGroup]:
    """The process group the settings describe, or None for a single process.

    Each setting not given is read from Keras's variables (`KERAS_DISTRIBUTION_JOB_ADDRESSES`,
    whose first address is the coordinator, `_NUM_PROCESSES`, `_PROCESS_ID`).

    Args:
        coordinator: HOST:PORT of process 0's coordination service.
        count: Processes in the job.
        index: This process's index.
        timeout_seconds: See `ProcessGroup`.
        environ: The environment to read (None: `os.environ`).

    Raises:
        ProcessGroupError: Some settings but not all are given, or they are invalid.
    """
    environ = os.environ if environ is None else environ
    if coordinator is None and environ.get(ADDRESSES_VARIABLE):
        coordinator = environ[ADDRESSES_VARIABLE].split(",")[0].strip()
    try:
        if count is None and environ.get(COUNT_VARIABLE):
            count = int(environ[COUNT_VARIABLE])
        if index is None and environ.get(INDEX_VARIABLE):
            index = int(environ[INDEX_VARIABLE])
    except ValueError:
        raise ProcessGroupError(f"{COUNT_VARIABLE} and {INDEX_VARIABLE} must be whole numbers") from None
    settings = {"--coordinator": coordinator, "--num-processes": count, "--process-id": index}
    if all(value is None for value in settings.values()) or count == 1:
        return None
    missing = [flag for flag, value in settings.items() if value is None]
    if missing:
        raise ProcessGroupError(f"several processes need --coordinator, --num-processes and --process-id "
                                f"(or Keras's {ADDRESSES_VARIABLE}, {COUNT_VARIABLE}, {INDEX_VARIABLE}); "
                                f"missing: {', '.join(missing)}")
    return ProcessGroup(coordinator, count, index, timeout_seconds)


def join(group: ProcessGroup):
    """Joins this process to `group`: afterwards JAX sees the devices of every process.

    Called before any JAX computation (JAX fixes its devices at the first).

    Args:
        group: The `ProcessGroup`.

    Raises:
        ProcessGroupError: The backend is not JAX, JAX has already started, or the
            processes did not all join within `JOIN_TIMEOUT_SECONDS`.
    """
    if keras.backend.backend() != "jax":
        raise ProcessGroupError(f"several processes (--num-processes {group.count}) need the JAX backend "
                                "(--backend jax); TensorFlow trains in one process")
    import jax

    try:
        jax.distributed.initialize(
            coordinator_address=group.coordinator, num_processes=group.count, process_id=group.index,
            initialization_timeout=JOIN_TIMEOUT_SECONDS, heartbeat_timeout_seconds=group.timeout_seconds,
            shutdown_timeout_seconds=group.timeout_seconds,
            # JAX's SLURM and MPI detection would give each process one GPU (its local
            # rank's); a process per host uses all of its own (JAX_LOCAL_DEVICE_IDS still
            # chooses them where set).
            cluster_detection_method="deactivate",
        )
    except RuntimeError as error:  # JAX already started, or no connection (XlaRuntimeError)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ProcessGroupError(f"process {group.index} of {group.count} could not join the others at "
                                f"{group.coordinator} ({first_line})") from None


def this_shard() -> Shard:
    """This process's place among the processes training together: `Shard()` if alone."""
    if keras.backend.backend() != "jax":
        return Shard()
    import jax

    return Shard(jax.process_index(), jax.process_count())


def barrier(name: str):
    """Returns once every process has called it with the same `name` (at once if alone).

    Args:
        name: Names the point (the processes check that they wait at the same one).
    """
    if this_shard().whole:
        return
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def end_now_if_shared(code: int):
    """Ends this process at once with exit status `code` if it is one of several.

    A process of several that exits normally waits at JAX's shutdown barrier for the
    others, which may be waiting for it in a collective: each would wait out its timeout.
    Ending at once lets the others see it gone within `ProcessGroup.timeout_seconds`. A
    single process is left to end as it would.

    Args:
        code: The exit status.
    """
    if this_shard().whole:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def lost_another_process(error: BaseException) -> bool:
    """Whether `error`, met by a process of several, says that another process is gone
    (never for a single process).

    Args:
        error: An exception raised while training.
    """
    return not this_shard().whole and any(sign in str(error) for sign in LOST_PROCESS_SIGNS)


def stop_line(error: BaseException) -> str:
    """One line on why this process of several stops: another is gone, or its own error.

    Args:
        error: The exception it stops on.
    """
    shard = this_shard()
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if lost_another_process(error):
        return f"process {shard.index} of {shard.count}: another process stopped ({first})"
    return f"process {shard.index} of {shard.count}: {type(error).__name__}: {first}"
