"""How open is the future of the embedded pushing data? The spread of the simulator's outcomes.

For each of the first N test sequences of the embedded dataset, the simulator is run K times
on the same scene with the same actions, each run with its own draw of the physics'
randomness (slips, spin, friction jitter), and the RMS distance per pixel between two
outcomes is measured frame by frame, exactly as `evaluate.py` measures the diversity of a
model's samples. That is the spread a perfect model's samples would show; a model whose
samples spread far less than this has a latent that does not carry the data's uncertainty.

    python benchmarks/data_spread.py --sequences 64 --outcomes 5
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results_file import write_results  # noqa: E402
from keras_cvae.data.embedded import embedded_datasets  # noqa: E402
from keras_cvae.data.generate import TEST_INDEX_OFFSET  # noqa: E402
from keras_cvae.data.pushing_sim import SimConfig, plan_actions, sample_scene, simulate  # noqa: E402
from keras_cvae.evaluation.scoring import SpreadOfSamples  # noqa: E402

def outcomes_of(seed: int, index: int, count: int) -> np.ndarray:
    """`count` runs of one test sequence's scene and actions: float [count, 30, 64, 64, 3]."""
    config = SimConfig()
    rng = np.random.default_rng([seed, index])
    scene = sample_scene(rng, config)
    actions = plan_actions(scene, rng, config)
    runs = [simulate(actions, np.random.default_rng([seed, index, run, 1]), config, scene=scene)["image_aux1"]
            for run in range(count)]
    return np.stack(runs) / 255.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=64, help="test sequences (default: 64)")
    parser.add_argument("--outcomes", type=int, default=5, help="runs per sequence, at least 2 (default: 5)")
    parser.add_argument("--out", default="benchmarks/results/data-spread-pushing.json", help="the JSON written")
    args = parser.parse_args(argv)
    if args.outcomes < 2 or args.sequences < 1:
        parser.error("--outcomes must be at least 2 and --sequences at least 1")
    seed = embedded_datasets()["pushing"].seed
    spread = SpreadOfSamples()
    runs = np.stack([outcomes_of(seed, TEST_INDEX_OFFSET + j, args.outcomes) for j in range(args.sequences)], axis=1)
    for outcome in runs:  # [sequences, FRAMES, 64, 64, 3]
        spread.add(outcome)
    per_frame = spread.diversity().mean(axis=0)
    results = {
        "rms_distance_per_frame": [round(float(v), 5) for v in per_frame],
        "evaluated_frames_3_to_12_mean": float(per_frame[2:12].mean()),
        "frames_13_to_30_mean": float(per_frame[12:].mean()),
        "note": "RMS distance per pixel between two runs of one scene and action sequence, per frame of "
                "image_aux1 in [0, 1]; the evaluation (2 -> 10) scores frames 3-12",
    }
    print("RMS distance between two outcomes, per frame: " + " ".join(f"{v:.4f}" for v in per_frame))
    print(f"frames 3-12 (evaluated): {results['evaluated_frames_3_to_12_mean']:.4f}; "
          f"frames 13-30: {results['frames_13_to_30_mean']:.4f}")
    write_results(args.out, "spread of the pushing simulator's outcomes for one scene and action sequence",
                  results, sequences=args.sequences, outcomes=args.outcomes, seed=seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
