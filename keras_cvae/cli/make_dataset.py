"""Generates a dataset in the BAIR TFRecord layout: robot pushing, or the bouncing toy.

    python scripts/make_dataset.py --out data/pushing --train 1280 --test 256 --seed 0
    python scripts/make_dataset.py --world bouncing --out data/bouncing --train 10240

Writes OUT/train/traj_A_to_B.tfrecords and OUT/test/..., 256 sequences of 30 frames per
file. The second train file (sequences 256..511) is the validation split. The folder is
built beside OUT and renamed into place when complete, so a killed run leaves no half
dataset (the next run removes what it left).
"""

import argparse
import sys

from keras_cvae.cli.common import HelpFormatter
from keras_cvae.data import DataError
from keras_cvae.data.generate import WORLDS, generate_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--out", required=True, help="output folder, new or empty")
    parser.add_argument("--world", choices=WORLDS, default="pushing",
                        help="what to generate: the robot-pushing simulator or the bouncing-disc toy "
                        "(default: pushing)")
    parser.add_argument("--train", type=int, default=1280, help="train sequences, val included (default 1280)")
    parser.add_argument("--test", type=int, default=256, help="test sequences (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed; same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="simulator processes (default: all CPU cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        out = generate_dataset(args.out, n_train=args.train, n_test=args.test, seed=args.seed,
                               workers=args.workers, progress=not args.quiet, world=args.world)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.train} train and {args.test} test {args.world} sequences to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
