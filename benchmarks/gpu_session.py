"""One GPU session in one command, under a hard deadline, each stage's results saved as it ends.

    python benchmarks/gpu_session.py --out $OUT                 # on the GPU machine (JAX, no TensorFlow)
    python benchmarks/gpu_session.py --out DIR --mode rehearse  # the same chain in seconds on a CPU

`benchmarks/gpu_session.sh` installs Keras from wheels and calls this. The stages, in order:

1. environment: GPU name, memory and driver, JAX/Keras/Python versions, devices, commit.
2. data: the pushing dataset generated on every core (`--train` sequences; its test split
   is the embedded dataset's, same seed), with the generation time.
3. bench: the svg training step on JAX/XLA per (precision, batch): compile time, median
   step time of each teacher-forcing branch, sequences/s, peak GPU memory, and the input
   pipeline's batches/s beside the steps/s (does it keep up?). Each configuration runs in
   its own process with what is left of the bench's share of the deadline.
4. flagship: `train.py --time-limit` with the time left, minus the reserve of the stages after it.
5. evaluate: the flagship, 2 -> 10 on the test split (1 sample, best of N, copy-last
   beside) on JAX, its summary kept in summary.json: the figures come back even if the
   weights do not.
6. package: the flagship's weights in float16 parts under the return limits, with
   run.json, log.csv, curves.png and the last sample GIF.

`summary.json` is rewritten after every stage (ran / skipped / failed, seconds, figures)
and `session.log` collects every process's output as it comes, so a run killed at any
point still returns what it did. The returned files are checked against the limits of
the way back (`check_return_limits`); `benchmarks/gpu_return.py` turns them into a model.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
MAX_FILES, MAX_FILE_BYTES, MAX_TOTAL_BYTES, MAX_DEPTH = 8, 16 * 2**20, 64 * 2**20, 2
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class SessionPlan:
    """What a session runs; `MODES` holds the GPU session and its CPU rehearsal.

    Args:
        deadline_s: Seconds the whole command may take.
        train_sequences: Training sequences to generate (validation file included).
        test_sequences: Test sequences to generate.
        bench_preset: Preset of the throughput bench.
        bench_configs: (precision, batch size) pairs, in order of importance.
        bench_steps: Timed steps per teacher-forcing branch.
        bench_share: Fraction of the deadline the bench may use.
        flagship_preset: Preset of the flagship run.
        flagship_flags: Further train.py flags of the flagship.
        after_flagship_s: Seconds kept after the flagship for its evaluation and packaging.
        flagship_minutes_cap: Longest flagship training in minutes, or None: all the time
            left (a rehearsal proves the chain, and a busy CPU only stretches it).
        eval_samples: Samples per test sequence of the flagship's evaluation (best of N).
        eval_sequences: Test sequences it scores, or None: all.
    """

    deadline_s: float
    train_sequences: int
    test_sequences: int
    bench_preset: str
    bench_configs: tuple
    bench_steps: int
    bench_share: float
    flagship_preset: str
    flagship_flags: tuple
    after_flagship_s: float
    flagship_minutes_cap: Optional[float] = None
    eval_samples: int = 5
    eval_sequences: Optional[int] = None


MODES = {
    "gpu": SessionPlan(
        deadline_s=480, train_sequences=10240, test_sequences=256, bench_preset="svg",
        bench_configs=(("mixed_bfloat16", 64), ("mixed_bfloat16", 128), ("float32", 64)),
        bench_steps=20, bench_share=0.3, flagship_preset="medium",
        flagship_flags=("--precision", "mixed_bfloat16", "--batch-size", "64", "--steps-per-epoch", "200"),
        after_flagship_s=75,
    ),
    "rehearse": SessionPlan(
        deadline_s=300, train_sequences=520, test_sequences=8, bench_preset="tiny",
        bench_configs=(("float32", 4),), bench_steps=2, bench_share=0.5,
        flagship_preset="tiny", flagship_flags=("--batch-size", "4", "--steps-per-epoch", "4"),
        after_flagship_s=60, flagship_minutes_cap=0.25, eval_samples=2, eval_sequences=4,
    ),
}


class Session:
    """The running session: its deadline, log and summary under `out`.

    Args:
        out: Folder whose files come back.
        plan: The `SessionPlan`.
        mode: Name of the plan.
        work: Scratch folder for data and the run (never returned).
    """

    def __init__(self, out: Path, plan: SessionPlan, mode: str, work: Path):
        self.out, self.plan, self.work = out, plan, work
        self.start = time.monotonic()
        self.log = out / "session.log"
        self.summary = {"mode": mode, "deadline_s": plan.deadline_s,
                        "started": datetime.datetime.now().isoformat(timespec="seconds"),
                        "command": " ".join([Path(sys.executable).name, *sys.argv]), "stages": {}}

    def left(self) -> float:
        return self.plan.deadline_s - (time.monotonic() - self.start)

    def say(self, text: str):
        line = f"[{time.monotonic() - self.start:7.1f} s] {text}"
        print(line, flush=True)
        with open(self.log, "a") as log:
            log.write(line + "\n")

    def save(self):
        self.summary["elapsed_s"] = round(time.monotonic() - self.start, 1)
        temporary = self.out / ".summary.json.tmp"
        temporary.write_text(json.dumps(self.summary, indent=1))
        temporary.replace(self.out / "summary.json")

    def stage(self, name: str, function, *args):
        """Runs a stage, recording ran / failed with its seconds and results; never raises."""
        self.say(f"stage {name}: start ({self.left():.0f} s left)")
        began = time.monotonic()
        try:
            record = {"status": "ran", **(function(self, *args) or {})}
        except Exception as error:  # a stage's failure must not cost the stages after it
            record = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        record["seconds"] = round(time.monotonic() - began, 1)
        self.summary["stages"][name] = record
        self.save()
        self.say(f"stage {name}: {record['status']} in {record['seconds']} s")
        return record

    def skip(self, name: str, why: str):
        self.summary["stages"][name] = {"status": "skipped", "why": why}
        self.save()
        self.say(f"stage {name}: skipped ({why})")

    def run(self, command: list, timeout: float, env=None) -> subprocess.CompletedProcess:
        """Runs `command` with its output appended to session.log; kills it after `timeout` s."""
        self.say("$ " + " ".join(str(part) for part in command))
        with open(self.log, "a") as log:
            return subprocess.run([str(part) for part in command], stdout=log, stderr=subprocess.STDOUT,
                                  timeout=max(1.0, timeout), cwd=ROOT, env={**os.environ, **(env or {})})


# ---------------------------------------------------------------------- stages
def environment(session: Session, commit: str) -> dict:
    facts = {"python": platform.python_version(), "platform": platform.platform(),
             "cpu_count": os.cpu_count(), "commit": commit}
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=60)
        facts["gpus"] = [line.strip() for line in query.stdout.splitlines() if line.strip()]
    probe = subprocess.run(
        [sys.executable, "-c", "import jax, keras, json; print(json.dumps({'jax': jax.__version__, "
         "'keras': keras.__version__, 'backend': keras.backend.backend(), "
         "'devices': [str(d) for d in jax.devices()]}))"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    if probe.returncode != 0:
        raise RuntimeError(f"JAX/Keras do not import: {probe.stderr.strip().splitlines()[-1:]}")
    facts.update(json.loads(probe.stdout.strip().splitlines()[-1]))
    return facts


def generate_data(session: Session) -> dict:
    data = session.work / "pushing"
    command = [sys.executable, "scripts/make_dataset.py", "--out", data, "--train",
               session.plan.train_sequences, "--test", session.plan.test_sequences, "--seed", 0, "--quiet"]
    began = time.monotonic()
    done = session.run(command, timeout=session.left() - 60)
    if done.returncode != 0:
        raise RuntimeError(f"make_dataset.py exited {done.returncode} (session.log)")
    seconds = time.monotonic() - began
    count = session.plan.train_sequences + session.plan.test_sequences
    return {"path": str(data), "sequences": count, "workers": os.cpu_count(),
            "sequences_per_s": round(count / seconds, 1)}


def bench(session: Session, data: Path) -> dict:
    plan = session.plan
    flagship_needs = (1.0 - plan.bench_share) * plan.deadline_s
    results = {}
    for precision, batch in plan.bench_configs:
        name = f"{precision}-b{batch}"
        budget = session.left() - flagship_needs
        if budget < 20:
            results[name] = {"status": "skipped", "why": "the flagship's share of the deadline"}
            continue
        figures = session.work / f"bench-{name}.json"
        try:
            done = session.run([sys.executable, __file__, "bench-worker", "--preset", plan.bench_preset,
                                "--precision", precision, "--batch-size", batch, "--steps", plan.bench_steps,
                                "--data", data, "--figures", figures], timeout=budget)
            status = "ran" if done.returncode == 0 else f"failed: exit {done.returncode} (session.log)"
        except subprocess.TimeoutExpired:
            status = f"failed: timed out after {budget:.0f} s"
        # The worker writes its figures as it gets them: a timeout keeps those it had.
        results[name] = {"status": status, **(json.loads(figures.read_text()) if figures.is_file() else {})}
        session.summary["stages"]["bench"] = {"status": "running", "configs": results}
        session.save()
    if not any(result["status"] == "ran" for result in results.values()):
        raise RuntimeError(f"no configuration finished: {results}")
    return {"preset": plan.bench_preset, "configs": results}


def flagship(session: Session, data: Path) -> dict:
    run = session.work / "flagship"
    minutes = (session.left() - session.plan.after_flagship_s - 20) / 60  # 20 s: imports, model build
    minutes = min(minutes, session.plan.flagship_minutes_cap or minutes)
    if minutes < 0.2:
        raise RuntimeError(f"only {minutes * 60:.0f} s left for training")
    command = [sys.executable, "scripts/train.py", "--backend", "jax", "--preset", session.plan.flagship_preset,
               "--kl", "cyclical", "--data", data, "--data-engine", "numpy", "--out", run,
               "--time-limit", f"{minutes:.2f}", "--verbose", "2", *session.plan.flagship_flags]
    try:
        done = session.run(command, timeout=session.left() - session.plan.after_flagship_s)
        status = done.returncode
    except subprocess.TimeoutExpired:
        status = "killed at the deadline"
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    if not (run / "model.keras").is_file():
        raise RuntimeError(f"train.py ended ({status}) without a model.keras")
    return {"exit": status, "run": str(run), "time_limit_minutes": round(minutes, 2),
            "epochs_done": info.get("epochs_done"), "time_limit": info.get("time_limit"),
            "train": info.get("train")}


def evaluate(session: Session, run: Path, data: Path) -> dict:
    out = session.work / "eval"
    command = [sys.executable, "scripts/evaluate.py", "--run", run, "--backend", "jax", "--data", data,
               "--split", "test", "--n-past", 2, "--horizon", 10, "--samples", session.plan.eval_samples,
               "--out", out, "--quiet"]
    if session.plan.eval_sequences:
        command += ["--max-sequences", session.plan.eval_sequences]
    done = session.run(command, timeout=session.left() - 30)
    if done.returncode != 0:
        raise RuntimeError(f"evaluate.py exited {done.returncode} (session.log)")
    report = json.loads((out / "metrics.json").read_text())
    return {"protocol": report["protocol"], "summary": report["summary"]}


def package(session: Session, run: Path) -> dict:
    folder = session.out / "flagship"
    done = session.run([sys.executable, __file__, "package-worker", "--run", run, "--to", folder],
                       timeout=session.left())
    if done.returncode != 0:
        raise RuntimeError(f"splitting the weights exited {done.returncode} (session.log)")
    for name in ("run.json", "log.csv", "curves.png"):
        if (run / name).is_file():
            shutil.copy(run / name, folder / name)
    gifs = sorted((run / "samples").glob("epoch-*.gif"))
    if gifs:
        shutil.copy(gifs[-1], folder / "sample.gif")
    return {"files": sorted(p.name for p in folder.iterdir())}


# ---------------------------------------------------------------------- return limits
def check_return_limits(out: Path) -> list:
    """What in `out` breaks the limits of files coming back (empty if nothing).

    Args:
        out: The folder whose files come back.
    """
    problems = []
    files = [p for p in out.rglob("*") if p.is_file()]
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files, more than {MAX_FILES}")
    total = 0
    for path in files:
        size = path.stat().st_size
        total += size
        relative = path.relative_to(out)
        if size > MAX_FILE_BYTES:
            problems.append(f"{relative}: {size} bytes, more than {MAX_FILE_BYTES}")
        if len(relative.parts) - 1 > MAX_DEPTH:
            problems.append(f"{relative}: more than {MAX_DEPTH} folders deep")
        if not all(PLAIN_NAME.match(part) for part in relative.parts):
            problems.append(f"{relative}: not a plain name")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"{total} bytes in all, more than {MAX_TOTAL_BYTES}")
    return problems


def fit_return_limits(session: Session):
    """Drops the least needed files until the rest fits the limits (the GPU session must
    bring back its weights and figures whatever else it wrote)."""
    for optional in ("flagship/sample.gif", "flagship/curves.png", "session.log"):
        if not check_return_limits(session.out):
            return
        path = session.out / optional
        if path.is_file():
            if optional == "session.log":  # keep its end, where a failure shows
                path.write_text(path.read_text()[-2_000_000:])
            else:
                path.unlink()
            session.say(f"returned files over the limits: {optional} trimmed")


# ---------------------------------------------------------------------- workers
def bench_worker(args):
    """In its own process: compile and step times of the training step, the pipeline's rate."""
    import jax
    import keras
    import numpy as np

    from keras_cvae.config import replace
    from keras_cvae.data import iterate_numpy, make_dataset
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG
    from keras_cvae.training import compile_model

    keras.mixed_precision.set_global_policy(args.precision)
    preset = get_preset(args.preset)
    model = SVG(preset.model, seed=0)
    # The teacher-forcing ratio is 1 at schedule step 0 and 0 from step 1: the schedule
    # clock picks the branch, and each branch's program compiles at its first step.
    train = replace(preset.train, batch_size=args.batch_size, tfr=1.0, tfr_start_decay_epoch=1,
                    tfr_decay_step=1.0, tfr_floor=0.0, steps_per_epoch=1, epochs=2)
    compile_model(model, train)
    rng = np.random.default_rng(0)
    shape = (args.batch_size, preset.model.window_length)
    batch = {"frames": rng.random((*shape, 64, 64, 3), dtype=np.float32),
             "conditions": rng.normal(size=(*shape, 7)).astype("float32")}

    def step():
        began = time.perf_counter()
        float(model.train_on_batch(batch, return_dict=True)["loss"])
        return time.perf_counter() - began

    def save(figures):
        Path(args.figures).write_text(json.dumps(figures, indent=1))
        print(json.dumps(figures), flush=True)

    figures = {"precision": args.precision, "batch_size": args.batch_size}
    for branch, position in (("teacher_forced", 0.0), ("free_running", 1.0)):
        model.schedule_clock.assign(np.float32([position, 0.0]))
        first = step()  # the branch's compile, or a copy of the state after its change
        times = [step() for _ in range(args.steps)]
        median = float(np.median(times))
        figures[branch] = {"first_step_s": round(first, 2), "compile_s_estimate": round(first - median, 2),
                           "step_s_median": round(median, 5), "step_s": [round(t, 5) for t in times],
                           "sequences_per_s": round(args.batch_size / median, 1)}
        save(figures)
    stats = jax.devices()[0].memory_stats() or {}
    figures["peak_memory_gib"] = round(stats["peak_bytes_in_use"] / 2**30, 2) if "peak_bytes_in_use" in stats else None
    dataset = make_dataset(str(args.data), "train", batch_size=args.batch_size, training=True, seed=0,
                           engine="numpy")
    batches = iterate_numpy(dataset, max_batches=args.steps + 1)
    next(batches)  # the workers' start
    began = time.perf_counter()
    count = sum(1 for _ in batches)
    pipeline_rate = count / (time.perf_counter() - began)
    slowest_step = max(figures[b]["step_s_median"] for b in ("teacher_forced", "free_running"))
    figures["pipeline_batches_per_s"] = round(pipeline_rate, 2)
    figures["steps_per_s_slowest_branch"] = round(1.0 / slowest_step, 2)
    figures["pipeline_keeps_up"] = pipeline_rate >= 1.0 / slowest_step
    save(figures)


def package_worker(args):
    """In its own process: the run's model as float16 weight parts."""
    from keras_cvae.run_folder import RunFolder
    from keras_cvae.weight_parts import split_weights

    paths = split_weights(RunFolder(Path(args.run)).load_model(), args.to)
    print("wrote", ", ".join(p.name for p in paths), flush=True)


# ---------------------------------------------------------------------- driver
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", default="session", choices=("session", "bench-worker", "package-worker"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder whose files come back (default: $OUT)")
    parser.add_argument("--mode", choices=sorted(MODES), default="gpu",
                        help="gpu: the real session; rehearse: the same chain with the tiny preset, "
                        "a few hundred sequences and seconds of training (default: gpu)")
    parser.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                        help="seconds the whole command may take (default: 480 for gpu, 300 for rehearse)")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder for data and the run (default: a folder in /tmp)")
    parser.add_argument("--commit", default=os.environ.get("KERAS_CVAE_COMMIT", "unknown"),
                        help="the commit being run, for the summary (default: $KERAS_CVAE_COMMIT)")
    for flag in ("--preset", "--precision", "--batch-size", "--steps", "--data", "--figures", "--run", "--to"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.task == "bench-worker":
        args.batch_size, args.steps = int(args.batch_size), int(args.steps)
        return bench_worker(args)
    if args.task == "package-worker":
        return package_worker(args)
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    if out is None:
        print("error: --out (or $OUT): the folder whose files come back", file=sys.stderr)
        return 2
    plan = MODES[args.mode]
    if args.deadline is not None:
        plan = SessionPlan(**{**plan.__dict__, "deadline_s": args.deadline})
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(f"/tmp/keras-cvae-gpu-session-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    session = Session(out, plan, args.mode, work)
    session.save()
    session.stage("environment", environment, args.commit)
    data = session.stage("data", generate_data)
    if data["status"] != "ran":
        for name in ("bench", "flagship", "evaluate", "package"):
            session.skip(name, "no data")
    else:
        data_path = Path(data["path"])
        session.stage("bench", bench, data_path)
        trained = session.stage("flagship", flagship, data_path)
        if trained["status"] == "ran":
            session.stage("evaluate", evaluate, Path(trained["run"]), data_path)
            session.stage("package", package, Path(trained["run"]))
        else:
            for name in ("evaluate", "package"):
                session.skip(name, "no flagship model")
    fit_return_limits(session)
    problems = check_return_limits(out)
    session.summary["return_limits"] = problems or "ok"
    session.save()
    failed = [name for name, stage in session.summary["stages"].items() if stage["status"] != "ran"]
    session.say(f"done: {', '.join(failed) + ' not run' if failed else 'every stage ran'}; "
                f"return limits {'ok' if not problems else problems}")
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
