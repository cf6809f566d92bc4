"""Runs the training command (scripts/train.py) in this process, watching what it writes
and, if asked, killing it mid-run.

    python tests/multihost_driver.py WATCHED KILL_AT_STEP TRAIN_ARGS...

WATCHED: a folder; every file the process opens for writing, creates, renames, removes or
makes there is recorded (Python's audit events: what keras-cvae writes goes through them,
h5py's files included, which are written under a temporary name and renamed), and listed
on the last line of stdout as `WRITES: [...]` (JSON) when the command returns.
KILL_AT_STEP: the process kills itself with SIGKILL after its N-th training step (0: never).
"""

import json
import os
import signal
import sys
from pathlib import Path

WRITE_EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.truncate",
                "shutil.rmtree", "shutil.move", "shutil.copyfile"}


def watch(folder: Path, writes: list):
    """Records the write-like audit events on paths under `folder` in `writes`."""
    root = str(folder.resolve())

    def inside(path):
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(root)
        except TypeError:  # a file descriptor
            return False

    def hook(event, args):
        if event == "open" and len(args) >= 2 and isinstance(args[1], str) and set(args[1]) & set("wax+"):
            if inside(args[0]):
                writes.append(f"open({args[1]}) {args[0]}")
        elif event == "open" and len(args) >= 3 and isinstance(args[2], int):
            if args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(args[0]):
                writes.append(f"open(flags) {args[0]}")
        elif event in WRITE_EVENTS and args and inside(args[0]):
            writes.append(f"{event} {args[0]}")

    sys.addaudithook(hook)


def kill_after(steps: int):
    from keras_cvae import callbacks

    done = []

    def on_train_batch_end(self, batch, logs=None):
        done.append(batch)
        if len(done) == steps:
            print(f"killing process {os.getpid()} after step {steps}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    callbacks.DivergenceGuard.on_train_batch_end = on_train_batch_end


def main():
    watched, kill_at_step, *train_args = sys.argv[1:]
    writes = []
    watch(Path(watched), writes)
    from keras_cvae.cli import train

    if int(kill_at_step):
        kill_after(int(kill_at_step))
    code = train.main(train_args)
    print("WRITES: " + json.dumps(writes), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
