"""The tasks a run can be: what differs between them for training and evaluation.

"bair": SVG on action-conditioned robot-pushing video (`keras_cvae.model`).
"pose": the pose-conditioned CVAE on 32 x 64 dance video (`keras_cvae.pose_model`).

Training (`keras_cvae.training`) and evaluation (`keras_cvae.evaluation.run`) ask the run's
task for its model, its data and its protocol, and are otherwise the same for both. A run
records its task in run.json; runs without one are "bair" runs.
"""

import contextlib
from dataclasses import dataclass

from keras_cvae import data as data_lib
from keras_cvae.config import ModelConfig
from keras_cvae.data import pose_pipeline
from keras_cvae.evaluation.protocol import EvaluationError, resolve_protocol
from keras_cvae.pose_config import PoseModelConfig, check_task


@dataclass(frozen=True)
class BairTask:
    """SVG on BAIR-layout data (TFRecords, TFDS, lab folders, the embedded pushing data)."""

    name: str = "bair"
    default_preset: str = "svg"
    default_split: str = "test"
    default_eval_batch: int = 16
    protocol_notes: tuple = ()

    def run_info(self, data, engine) -> dict:
        """The task's entries of a new run.json: the condition statistics of the data."""
        mean, std = data_lib.condition_statistics(data, engine=engine)
        return {"condition_mean": mean.tolist(), "condition_std": std.tolist()}

    def model_config(self, info) -> ModelConfig:
        return ModelConfig.from_dict(info["model"])

    def build_model(self, info, seed):
        from keras_cvae.model import SVG

        return SVG(self.model_config(info), condition_mean=info["condition_mean"],
                   condition_std=info["condition_std"], seed=seed)

    def data_errors(self, source):
        """Context turning the data pipeline's errors into a `DataError`."""
        return data_lib.pipeline_errors(source)

    def training_data(self, info, train_config, engine, start_batch, shard):
        """The training stream from global batch `start_batch` on: this process's `shard`
        of every batch of `train_config.batch_size` sequences."""
        config = self.model_config(info)
        return data_lib.make_dataset(info["data"], "train", n_past=config.n_past, n_future=config.n_future,
                                     batch_size=train_config.batch_size, training=True,
                                     seed=train_config.seed, engine=engine, start_batch=start_batch,
                                     shard=shard)

    def validation_batches(self, info, train_config, engine) -> list:
        config = self.model_config(info)
        dataset = data_lib.make_dataset(info["data"], "val", n_past=config.n_past, n_future=config.n_future,
                                        batch_size=train_config.batch_size, training=False, engine=engine)
        return list(data_lib.iterate_numpy(dataset, max_batches=train_config.validation_steps))

    def protocol(self, config, n_past, horizon) -> tuple:
        """(n_past, horizon) of an evaluation; see `evaluation.protocol.resolve_protocol`."""
        return resolve_protocol(config, n_past, horizon)

    def describe(self, source, config) -> dict:
        return data_lib.describe_source(source)

    def evaluation_data(self, source, split, n_past, horizon, batch_size):
        return data_lib.make_dataset(source, split, n_past=n_past, n_future=horizon,
                                     batch_size=batch_size, training=False)


@dataclass(frozen=True)
class PoseTask:
    """The pose-conditioned CVAE on data in the pose lab's layout (or the embedded dances)."""

    name: str = "pose"
    default_preset: str = "pose"
    default_split: str = "val"
    default_eval_batch: int = 2
    # Added to metrics.json's protocol (and its sentence, see `report.protocol_sentence`).
    protocol_notes: tuple = (("task", "pose"), ("conditions", "the pose-label image of every frame"),
                             ("latents", "N(0, I)"))

    def run_info(self, data, engine) -> dict:
        """Nothing to measure: labels are images in [0, 1]; checks the data is there."""
        pose_pipeline.resolve_pose_source(data)
        return {}

    def model_config(self, info) -> PoseModelConfig:
        return PoseModelConfig.from_dict(info["model"])

    def build_model(self, info, seed):
        from keras_cvae.pose_model import PoseCVAE

        return PoseCVAE(self.model_config(info), seed=seed)

    def data_errors(self, source):
        """No translation needed: the pose reader raises `DataError` itself."""
        return contextlib.nullcontext()

    def training_data(self, info, train_config, engine, start_batch, shard):
        """The training stream from global batch `start_batch` on: this process's `shard`
        of every batch of `train_config.batch_size` windows."""
        config = self.model_config(info)
        return pose_pipeline.make_pose_dataset(info["data"], "train", length=config.window_length,
                                               batch_size=train_config.batch_size, training=True,
                                               seed=train_config.seed, start_batch=start_batch,
                                               shard=shard)

    def validation_batches(self, info, train_config, engine) -> list:
        """The first validation videos, whole (the lab validates on full 630-frame rollouts)."""
        config = self.model_config(info)
        dataset = pose_pipeline.make_pose_dataset(info["data"], "val", length=config.video_length,
                                                  batch_size=train_config.batch_size, training=False)
        return [dataset[i] for i in range(min(train_config.validation_steps, len(dataset)))]

    def protocol(self, config, n_past, horizon) -> tuple:
        """(1, horizon): the first frame only, then `horizon` frames (default: the rest of a video)."""
        if n_past not in (None, 1):
            raise EvaluationError(f"n_past (--n-past) must be 1 for the pose task (the first frame), got {n_past}")
        horizon = config.video_length - 1 if horizon is None else int(horizon)
        if horizon < 1:
            raise EvaluationError(f"horizon (--horizon) must be at least 1, got {horizon}")
        return 1, horizon

    def describe(self, source, config) -> dict:
        return pose_pipeline.describe_pose_source(source, config.video_length)

    def evaluation_data(self, source, split, n_past, horizon, batch_size):
        """The split cut into consecutive videos of 1 + horizon frames."""
        return pose_pipeline.make_pose_dataset(source, split, length=n_past + horizon,
                                               batch_size=batch_size, training=False, progress=True)


TASK_TYPES = {"bair": BairTask, "pose": PoseTask}


def get_task(name):
    """The task called `name` ("bair" or "pose")."""
    return TASK_TYPES[check_task(name)]()


def task_of(info):
    """The task of a run from its run.json content (runs without one are "bair")."""
    return get_task(info.get("task", "bair"))
