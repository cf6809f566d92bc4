"""Evaluate a trained run: `python scripts/evaluate.py`.

The n_past -> horizon protocol (default: the model's 2 context frames -> 10 predicted
frames), teacher forcing off, latents from the prior, context frames excluded from the
scores. Prints a Markdown table (model vs copy-last-frame, PSNR and SSIM, one sample,
mean and best of N) and writes metrics.json, a per-frame plot, GIFs and strips to --out.

A pose run (--task pose) is evaluated the lab's way: from the first frame of each
630-frame validation video, every later frame rolled out from the model's own previous
prediction and the frame's pose label; PSNR per frame over the whole rollout, its mean,
SSIM, and the copy-first-frame baseline.
"""

import argparse
import sys

from keras_cvae.cli.common import HelpFormatter
from keras_cvae.startup import BACKENDS, select_backend
from keras_cvae.tasks import DEFAULT_TASK, REGISTRY, TASKS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--run", default=None,
                        help="run folder; None: the newest run under --runs-root")
    parser.add_argument("--runs-root", default="runs", help="folder searched for the newest run")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (any run loads on either); None: $KERAS_BACKEND, else tensorflow")
    parser.add_argument("--data", default=None,
                        help="dataset folder, or an embedded dataset's name (pushing, bouncing) "
                        "(default: the data the run was trained on, run.json 'data')")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help=f"the task the run must be ({', '.join(TASKS)}); an error if it is another "
                        f"(default: the run's own task from run.json, {DEFAULT_TASK} for runs without one)")
    parser.add_argument("--split", choices=("train", "val", "test"), default=None,
                        help="split to evaluate (default: " + ", ".join(
                            f"{task.default_split} for a {task.name} run" for task in REGISTRY.values()) + ")")
    parser.add_argument("--n-past", type=int, default=None,
                        help="context frames, at least 1; None: the model's n_past (pose: always 1, "
                        "the first frame)")
    parser.add_argument("--horizon", type=int, default=None,
                        help="predicted frames, n_past + horizon <= 30; None: the model's n_future. "
                        "Pose: frames rolled out after the first, the split being cut into videos of "
                        "1 + horizon frames (default: video_length - 1 = 629)")
    parser.add_argument("--samples", type=int, default=5,
                        help="samples per sequence for the mean and best of N")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sequences per rollout call (default: " + ", ".join(
                            f"{task.default_eval_batch} for a {task.name} run" for task in REGISTRY.values()) + ")")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent noise")
    parser.add_argument("--out", default=None, help="output folder; None: <run>/eval/")
    parser.add_argument("--save-predictions", metavar="FILE.npz", default=None,
                        help="also write the predictions (uint8) and ground truth of every sequence here")
    parser.add_argument("--gif-sequences", type=int, nargs="*", default=[0],
                        help="indices of the sequences drawn as GIF and strip")
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="evaluate only the first sequences of the split; None: all")
    parser.add_argument("--xla", dest="jit_compile", action=argparse.BooleanOptionalAction, default=False,
                        help="compile the rollout with XLA on TensorFlow (slow to compile on CPU); "
                        "JAX always compiles with XLA")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    select_backend(args.backend)
    from keras_cvae.data import DataError
    from keras_cvae.evaluation import EvalConfig, EvaluationError, evaluate_run
    from keras_cvae.run_folder import RunError

    try:
        config = EvalConfig(
            run=args.run,
            runs_root=args.runs_root,
            data=args.data,
            split=args.split,
            n_past=args.n_past,
            horizon=args.horizon,
            samples=args.samples,
            batch_size=args.batch_size,
            seed=args.seed,
            out=args.out,
            save_predictions=args.save_predictions,
            gif_sequences=tuple(args.gif_sequences),
            max_sequences=args.max_sequences,
            jit_compile=args.jit_compile,
            progress=not args.quiet,
            task=args.task,
        )
        report = evaluate_run(config)
    except (RunError, DataError, EvaluationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print()
    print(report["table"])
    print("wrote " + ", ".join(report["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
