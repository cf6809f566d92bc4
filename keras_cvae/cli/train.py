"""Train the SVG conditional VAE: `python scripts/train.py --kl cyclical`.

    python scripts/train.py --task pose --preset pose    # the pose-conditioned dance task

Every flag left unset keeps the value of the chosen preset (listed per preset in --help).

Several hosts (JAX): run the same command on every host, each with its --process-id:

    python scripts/train.py --backend jax --out runs/big --coordinator host0:12345 \\
        --num-processes 2 --process-id 0    # on host0; --process-id 1 on the other
"""

import argparse
import sys
import traceback
from pathlib import Path

from keras_cvae.cli.common import HelpFormatter
from keras_cvae.config import KL_SCHEDULES, PRECISIONS, replace
from keras_cvae.startup import BACKENDS, select_backend
from keras_cvae.tasks import DEFAULT_TASK, REGISTRY, TASKS, all_presets, get_task
from keras_cvae.tasks.svg.config import CONDITIONINGS, LATENT_STRUCTURES, PRIORS


def parse_args(argv=None):
    defaults = {name: preset for name, (_, preset) in all_presets().items()}
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )

    def preset_default(field, section="train"):
        values = {name: getattr(getattr(p, section), field) for name, p in defaults.items()
                  if hasattr(getattr(p, section), field)}
        return "preset default: " + ", ".join(f"{k} {v}" for k, v in values.items())

    parser.add_argument("--task", choices=TASKS, default=None,
                        help="; ".join(f"{task.name} = {task.summary}" for task in REGISTRY.values())
                        + f" (default: {DEFAULT_TASK}; a resumed run keeps its own)")
    parser.add_argument("--preset", choices=sorted(defaults), default=None,
                        help="model and training sizes: " + "; ".join(
                            f"for --task {task.name}: {task.presets_help} (default {task.default_preset})"
                            for task in REGISTRY.values()))
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend: tensorflow, or jax (XLA; the way to train on GPUs "
                        "without TensorFlow) (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--data", default=None,
                        help="dataset: BAIR TFRecord folder, TFDS data_dir or lab folders, or the name "
                        "of an embedded dataset, generated once into the cache: 'pushing' (robot "
                        "pushing, the default) or 'bouncing' (a disc that turns at random: a toy "
                        "where the latent matters; write ./bouncing for a folder of that name); for "
                        "--task pose a folder of train/train_img, train/train_label, val/val_img, "
                        "val/val_label PNGs (default: the embedded dance dataset)")
    parser.add_argument("--out", type=Path, default=None,
                        help="new run folder (default: runs/<time>-<preset>-<kl>)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue this run folder from its newest checkpoint (or start it "
                        "over if it has none) with its own settings; only --epochs, --lr, "
                        "--validation-steps, --no-xla and --run-eagerly may change them, and "
                        "--data may point at its moved data")
    parser.add_argument("--from-checkpoint", default=None, metavar="NAME",
                        help="with --resume: continue from this older checkpoint instead of the "
                        "newest, e.g. epoch-0003 or epoch-0003-step-000120 (the names in "
                        "RUN/checkpoints/); the resumed run's first checkpoint removes the newer "
                        "ones (default: the newest)")
    parser.add_argument("--backup-every", type=int, default=0, metavar="STEPS",
                        help="also save a mid-epoch backup every STEPS steps, so a kill loses at "
                        "most that many (default: 0, off)")
    parser.add_argument("--backup-minutes", type=float, default=10.0, metavar="MINUTES",
                        help="also save a mid-epoch backup every MINUTES minutes (0: off; "
                        "default: 10)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                        help="train for this many minutes instead of a number of epochs: the "
                        "first epoch measures the step time, then the run stops at the last "
                        "epoch that fits, saving its checkpoint and model.keras, with the KL "
                        "and teacher-forcing schedules of --epochs x --steps-per-epoch spread "
                        "over the steps it holds (re-planned after every epoch; run.json "
                        "records the plan). With --resume: a new budget for the rest of the "
                        "run (default: off)")
    parser.add_argument("--devices", type=int, default=None,
                        help="devices of each process each batch is split over (data parallelism: "
                        "keras.distribution.DataParallel on JAX, tf.distribute.MirroredStrategy on "
                        "TensorFlow); the batch size must be a multiple of all of them (default: "
                        "every GPU of the host on JAX, else 1)")
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help="several processes (JAX only): where process 0 serves JAX's coordination "
                        "service, reachable from every process: the first host's name or address and "
                        "a free port (under SLURM: the first host of $SLURM_JOB_NODELIST) (default: the "
                        "first address of $KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    parser.add_argument("--num-processes", type=int, default=None, metavar="N",
                        help="processes training one model, usually one per host (SLURM: $SLURM_NTASKS); "
                        "--batch-size is then the global batch, split over the devices of all of "
                        "them, and every process reads its own share of each batch; the run folder "
                        "must be on a file system they share (default: "
                        "$KERAS_DISTRIBUTION_NUM_PROCESSES, else 1)")
    parser.add_argument("--process-id", type=int, default=None, metavar="I",
                        help="this process's index among --num-processes, 0 to N-1 (SLURM: "
                        "$SLURM_PROCID); process 0 writes the run folder, the others only read it "
                        "(default: $KERAS_DISTRIBUTION_PROCESS_ID)")
    parser.add_argument("--process-timeout", type=int, default=60, metavar="SECONDS",
                        help="several processes: when one has not been heard from for this long "
                        "(killed, crashed, its host down), the others end with an error and the "
                        "run resumes with --resume on all of them")
    parser.add_argument("--data-engine", choices=("tf", "numpy"), default=None,
                        help="input pipeline: tf (tf.data, fastest) or numpy (no TensorFlow; a "
                        "resumed run continues exactly the data stream of an uninterrupted one, "
                        "where tf.data starts a fresh seeded stream) (default: tf if TensorFlow "
                        "is installed)")
    parser.add_argument("--prior", choices=PRIORS, default=None,
                        help="learned (SVG-LP) or fixed N(0, I) (SVG-FP); " + preset_default("prior", "model"))
    parser.add_argument("--latents", choices=LATENT_STRUCTURES, default=None,
                        help="flat: SVG's one latent vector per step; hierarchical: plus spatial "
                        "latent maps at 8x8 and 16x16, each with its own posterior and prior, "
                        "the coarser conditioning the finer, fed to the decoder at their "
                        "resolution (HAF-SVG-like) (default: flat)")
    parser.add_argument("--conditioning", choices=CONDITIONINGS, default=None,
                        help="concat: actions and positions are concatenated to the LSTMs' "
                        "inputs; cconv: they also scale and shift every encoder and decoder "
                        "conv channel (conditional convolution, Choi et al. 2019) "
                        "(default: concat)")
    parser.add_argument("--epochs", type=int, default=None, help=preset_default("epochs"))
    parser.add_argument("--steps-per-epoch", type=int, default=None, help=preset_default("steps_per_epoch"))
    parser.add_argument("--validation-steps", type=int, default=None,
                        help="validation batches per epoch; " + preset_default("validation_steps"))
    parser.add_argument("--batch-size", type=int, default=None, help=preset_default("batch_size"))
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate; " + preset_default("learning_rate"))
    parser.add_argument("--beta", type=float, default=None,
                        help="KL weight at full strength; " + preset_default("beta"))
    parser.add_argument("--free-bits", type=float, default=None,
                        help="nats of KL per rollout step the posterior may carry unpenalised, so "
                        "that the latent does not collapse onto the prior before the decoder uses "
                        "it (the learned prior still follows it at full strength; 0 is the "
                        "reference's plain KL); " + preset_default("free_bits"))
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
    parser.add_argument("--clip-norm", type=float, default=None,
                        help="largest global gradient norm, larger gradients are rescaled to it "
                        "(the lab's max_norm); " + preset_default("clip_norm"))
    parser.add_argument("--seed", type=int, default=None, help=preset_default("seed"))
    parser.add_argument("--no-xla", dest="jit_compile", action="store_false", default=None,
                        help="run the steps without XLA (TensorFlow graph mode; JAX always "
                        "compiles with XLA) (default: XLA on a GPU; TensorFlow on a CPU runs "
                        "without it, its XLA being far slower there)")
    parser.add_argument("--run-eagerly", action="store_true", default=None,
                        help="run the steps eagerly, uncompiled (debugging; default: off)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="compute precision: float32, or mixed precision for GPUs "
                        "(mixed_bfloat16 on recent ones, mixed_float16 with loss scaling on "
                        "older ones); " + preset_default("precision"))
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="0 silent, 1 progress bar, 2 one line per epoch (default: bar on a "
                        "terminal, lines otherwise)")
    return parser.parse_args(argv)


TRAIN_FLAGS = {  # TrainConfig field: argparse destination
    "epochs": "epochs", "steps_per_epoch": "steps_per_epoch", "validation_steps": "validation_steps",
    "batch_size": "batch_size", "learning_rate": "lr", "beta": "beta", "free_bits": "free_bits", "kl": "kl",
    "kl_cycles": "kl_cycles", "kl_ratio": "kl_ratio", "tfr": "tfr",
    "tfr_start_decay_epoch": "tfr_start_decay_epoch", "tfr_decay_step": "tfr_decay_step",
    "tfr_floor": "tfr_floor", "seed": "seed", "jit_compile": "jit_compile",
    "run_eagerly": "run_eagerly", "precision": "precision", "clip_norm": "clip_norm",
}


def _job_from_args(args, job_class):
    given = {field: getattr(args, dest) for field, dest in TRAIN_FLAGS.items()
             if getattr(args, dest) is not None}
    model_flags = {"prior": args.prior, "latents": args.latents, "conditioning": args.conditioning}
    given_model_flags = [f"--{name}" for name, value in model_flags.items() if value is not None]
    if args.resume is not None and (args.preset is not None or args.task is not None or given_model_flags):
        raise ValueError("--task, --preset, --prior, --latents and --conditioning define a new run; a "
                         "resumed run keeps its model")
    task = get_task(args.task or DEFAULT_TASK)
    task_presets = task.presets()
    preset_name = args.preset or task.default_preset
    if preset_name not in task_presets:
        raise ValueError(f"preset (--preset) {preset_name!r} is not a {task.name} preset; choose from "
                         f"{', '.join(task_presets)}")
    preset = task_presets[preset_name]
    return job_class(
        model=task.configure(preset.model, model_flags), task=task.name,
        train=preset.train if args.resume is not None else replace(preset.train, **given),
        data=args.data, out=args.out, resume=args.resume, from_checkpoint=args.from_checkpoint,
        resume_changes=given if args.resume is not None else None, preset=preset_name,
        verbose="auto" if args.verbose is None else args.verbose,
        backup_every_steps=args.backup_every, backup_minutes=args.backup_minutes,
        data_engine=args.data_engine, devices=args.devices, time_limit_minutes=args.time_limit,
    )


def _join_processes(args):
    """Joins the other processes of the job, if there are any, before JAX starts."""
    from keras_cvae import distributed

    group = distributed.process_group(args.coordinator, args.num_processes, args.process_id,
                                      args.process_timeout)
    if group is not None:
        distributed.join(group)


def _stop_shared(args, error):
    """Ends a process of several that cannot go on, at once (not at JAX's shutdown barrier,
    where it would wait for the others), with one line saying why and how to go on."""
    from keras_cvae import distributed

    where = args.resume or args.out or "RUN"
    print(f"error: {distributed.stop_line(error)}; every process of the run ends: start them all "
          f"again with --resume {where}", file=sys.stderr)
    distributed.end_now_if_shared(1)
    return 1


def main(argv=None):
    args = parse_args(argv)
    select_backend(args.backend)
    try:
        _join_processes(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from keras_cvae import distributed
    from keras_cvae.data import DataError
    from keras_cvae.run_folder import RunError
    from keras_cvae.training import TrainingJob, summary_line, train

    try:
        job = _job_from_args(args, TrainingJob)
        result = train(job)
    except (DataError, RunError, ValueError) as error:
        if not distributed.lost_another_process(error):  # (gloo's failures are ValueErrors)
            print(f"error: {error}", file=sys.stderr)
            distributed.end_now_if_shared(1)  # the others are waiting for this one
            return 1
        return _stop_shared(args, error)
    except KeyboardInterrupt:
        where = args.resume or args.out or "runs/<run>"
        print(f"interrupted; continue from the newest checkpoint with: python scripts/train.py "
              f"--resume {where} (a run that had none is removed)", file=sys.stderr)
        distributed.end_now_if_shared(130)
        return 130
    except Exception as error:
        if distributed.this_shard().whole:
            raise
        if not distributed.lost_another_process(error):
            traceback.print_exc()
        return _stop_shared(args, error)
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
