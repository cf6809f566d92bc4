"""Runs the training command (scripts/train.py) in this process and kills it with SIGKILL at a chosen point.

    python tests/crash_driver.py POINT N TRAIN_ARGS...

POINT is where the N-th (from 1) event of its kind ends the process, as `kill -9` would:
    step        after the N-th training step of this process
    checkpoint  while writing the N-th end-of-epoch checkpoint: its weights are in a
                temporary file, not yet renamed
    validation  at the N-th validation batch
    plot        while saving the N-th figure: a partial PNG in the plot's temporary file
"""

import os
import signal
import sys
from pathlib import Path


def kill_at(count):
    """A function that kills this process on its `count`-th call."""
    calls = []

    def maybe_kill():
        calls.append(None)
        if len(calls) == count:
            os.kill(os.getpid(), signal.SIGKILL)

    return maybe_kill


def arm(point, count):
    import matplotlib.figure

    from keras_cvae import callbacks, run_folder

    maybe_kill = kill_at(count)
    if point == "step":
        callbacks.DivergenceGuard.on_train_batch_end = (
            lambda self, batch, logs=None: maybe_kill())
    elif point == "validation":
        callbacks.DivergenceGuard.on_test_batch_end = (
            lambda self, batch, logs=None: maybe_kill())
    elif point == "checkpoint":
        original = run_folder.RunFolder.write_checkpoint

        def write_checkpoint(self, checkpoint, save_weights, state):
            if checkpoint.step == 0:
                save_weights(str(checkpoint.weights_path.with_name(
                    f".tmp-{os.getpid()}-{checkpoint.weights_path.name}")))
                maybe_kill()
            original(self, checkpoint, save_weights, state)

        run_folder.RunFolder.write_checkpoint = write_checkpoint
    elif point == "plot":
        original = matplotlib.figure.Figure.savefig

        def savefig(self, path, *args, **kwargs):
            Path(path).write_bytes(b"\x89PNG\r\n")
            maybe_kill()
            original(self, path, *args, **kwargs)

        matplotlib.figure.Figure.savefig = savefig
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main():
    point, count, *train_args = sys.argv[1:]
    from keras_cvae.cli import train

    arm(point, int(count))
    return train.main(train_args)


if __name__ == "__main__":
    sys.exit(main())
