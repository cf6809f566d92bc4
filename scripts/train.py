"""Train the SVG conditional VAE: `python scripts/train.py --kl cyclical`.

Every flag left unset keeps the value of the chosen preset (listed per preset in --help).
"""

import argparse
import sys
from pathlib import Path

from keras_cvae.config import BACKENDS, KL_SCHEDULES, PRIORS, get_preset, presets, replace, select_backend


def parse_args(argv=None):
    defaults = presets()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def preset_default(field, section="train"):
        values = {name: getattr(getattr(p, section), field) for name, p in defaults.items()}
        return "preset default: " + ", ".join(f"{k} {v}" for k, v in values.items())

    parser.add_argument("--preset", choices=sorted(defaults), default="svg",
                        help="model and training sizes: svg = the reference BAIR settings "
                        "(needs a GPU), small = narrow model for CPU demos, tiny = unit tests "
                        "(default: svg)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend: tensorflow, or jax (XLA; the way to train on GPUs "
                        "without TensorFlow) (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--data", default=None,
                        help="dataset: BAIR TFRecord folder, TFDS data_dir or lab folders "
                        "(default: the embedded pushing dataset, generated once into the cache)")
    parser.add_argument("--out", type=Path, default=None,
                        help="new run folder (default: runs/<time>-<preset>-<kl>)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue this run folder from its newest checkpoint; its own "
                        "configs are used, only --epochs may extend it")
    parser.add_argument("--prior", choices=PRIORS, default=None,
                        help="learned (SVG-LP) or fixed N(0, I) (SVG-FP); " + preset_default("prior", "model"))
    parser.add_argument("--epochs", type=int, default=None, help=preset_default("epochs"))
    parser.add_argument("--steps-per-epoch", type=int, default=None, help=preset_default("steps_per_epoch"))
    parser.add_argument("--validation-steps", type=int, default=None,
                        help="validation batches per epoch; " + preset_default("validation_steps"))
    parser.add_argument("--batch-size", type=int, default=None, help=preset_default("batch_size"))
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate; " + preset_default("learning_rate"))
    parser.add_argument("--beta", type=float, default=None,
                        help="KL weight at full strength; " + preset_default("beta"))
    parser.add_argument("--kl", choices=KL_SCHEDULES, default=None,
                        help="KL annealing: cyclical, monotonic (one ramp) or none (weight 1); "
                        + preset_default("kl"))
    parser.add_argument("--kl-cycles", type=int, default=None,
                        help="cycles over the run (cyclical); " + preset_default("kl_cycles"))
    parser.add_argument("--kl-ratio", type=float, default=None,
                        help="fraction of a cycle spent ramping 0 -> 1; " + preset_default("kl_ratio"))
    parser.add_argument("--tfr", type=float, default=None,
                        help="teacher-forcing ratio before decay; " + preset_default("tfr"))
    parser.add_argument("--tfr-start-decay-epoch", type=int, default=None,
                        help="first epoch with a lowered ratio; " + preset_default("tfr_start_decay_epoch"))
    parser.add_argument("--tfr-decay-step", type=float, default=None,
                        help="ratio decrease per epoch; " + preset_default("tfr_decay_step"))
    parser.add_argument("--tfr-floor", type=float, default=None,
                        help="lowest ratio; " + preset_default("tfr_floor"))
    parser.add_argument("--seed", type=int, default=None, help=preset_default("seed"))
    parser.add_argument("--no-xla", dest="jit_compile", action="store_false", default=None,
                        help="run the steps without XLA (TensorFlow graph mode; JAX always "
                        "compiles with XLA) (default: XLA on)")
    parser.add_argument("--run-eagerly", action="store_true", default=None,
                        help="run the steps eagerly, uncompiled (debugging; default: off)")
    parser.add_argument("--mixed-precision", action="store_true", default=None,
                        help="mixed_float16 compute (for GPUs; default: off)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="0 silent, 1 progress bar, 2 one line per epoch (default: bar on a "
                        "terminal, lines otherwise)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    select_backend(args.backend)
    from keras_cvae.data import DataError
    from keras_cvae.run_folder import RunError
    from keras_cvae.training import TrainingJob, summary_line, train

    try:
        preset = get_preset(args.preset)
        model_config = replace(preset.model, prior=args.prior)
        train_config = replace(
            preset.train,
            epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
            validation_steps=args.validation_steps, batch_size=args.batch_size,
            learning_rate=args.lr, beta=args.beta, kl=args.kl, kl_cycles=args.kl_cycles,
            kl_ratio=args.kl_ratio, tfr=args.tfr, tfr_start_decay_epoch=args.tfr_start_decay_epoch,
            tfr_decay_step=args.tfr_decay_step, tfr_floor=args.tfr_floor, seed=args.seed,
            jit_compile=args.jit_compile, run_eagerly=args.run_eagerly,
            mixed_precision=args.mixed_precision,
        )
        job = TrainingJob(model=model_config, train=train_config, data=args.data, out=args.out,
                          resume=args.resume, preset=args.preset,
                          verbose="auto" if args.verbose is None else args.verbose)
        result = train(job)
    except (DataError, RunError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
