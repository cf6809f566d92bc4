"""Converts a dataset between the BAIR TFRecord layout and the course lab folder layout.

    python scripts/convert_dataset.py --to lab data/pushing data/pushing_lab
    python scripts/convert_dataset.py --to tfrecord data/pushing_lab data/pushing_again
    python scripts/convert_dataset.py --validate data/pushing

TFRecord -> lab writes {train,validate,test}/<traj>/<k>/0.png..29.png, actions.csv and
endeffector_positions.csv (the val file, the second train file, becomes validate/).
lab -> TFRecord writes {train,test}/traj_A_to_B.tfrecords (validate/ goes back into train
as the second file; image_main is a copy of the single lab camera). Both are lossless for
the model camera and the conditions. The destination is written in a temporary folder and
renamed when complete, so a failure leaves nothing behind.
"""

import argparse
import sys

from keras_cvae.cli.common import HelpFormatter
from keras_cvae.data import DataError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("src", help="source dataset directory (TFRecord root or lab folder root)")
    parser.add_argument("dst", nargs="?", help="destination directory (must not exist or be empty)")
    parser.add_argument("--to", choices=("lab", "tfrecord"),
                        help="target layout: 'lab' (from TFRecords) or 'tfrecord' (from lab folders)")
    parser.add_argument("--validate", action="store_true",
                        help="only check every record of the TFRecord files under SRC (framing, CRC, content)")
    parser.add_argument("--quiet", action="store_true", help="no per-file progress lines")
    args = parser.parse_args(argv)
    if not args.validate and (args.to is None or args.dst is None):
        parser.error("give --to lab|tfrecord and DST, or --validate")
    try:
        if args.validate:
            from keras_cvae.data.bair_tfrecord import validate_tfrecords

            counts = validate_tfrecords(args.src, progress=not args.quiet)
            print(f"ok: {len(counts)} files, {sum(counts.values())} sequences")
        else:
            from keras_cvae.data.convert import convert_dataset

            out = convert_dataset(args.src, args.dst, to=args.to, progress=not args.quiet)
            print(f"wrote {out}")
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
