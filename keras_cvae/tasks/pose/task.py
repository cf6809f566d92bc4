"""`PoseTask`: the pose-conditioned CVAE on dance video, the task contract of the pose family."""

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PoseTask:
    """The pose-conditioned CVAE on data in the pose lab's layout (or the embedded dances)."""

    name: str = "pose"
    summary: str = ("the pose-conditioned CVAE of the 2024 lab (32x64 dance frames, one pose-label "
                    "image per frame, 630-frame rollouts)")
    default_preset: str = "pose"
    presets_help: str = ("pose-lab = the lab reports' sizes (needs a GPU), pose = narrow model for CPU "
                         "demos, pose-tiny = unit tests")
    default_split: str = "val"
    default_eval_batch: int = 2
    inputs_help: str = "a first frame and pose-label PNGs"
    # Added to metrics.json's protocol.
    protocol_notes: tuple = (("conditions", "the pose-label image of every frame"), ("latents", "N(0, I)"))

    def presets(self) -> dict:
        from keras_cvae.tasks.pose.config import pose_presets

        return pose_presets()

    def configure(self, model_config, flags: dict):
        """Refuses SVG's model flags: the pose model has its own latent and prior."""
        given = [f"--{name}" for name, value in flags.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: SVG settings; the pose model has its own "
                             "(a spatial latent with an N(0, I) prior)")
        return model_config

    def run_info(self, data, engine) -> dict:
        """Nothing to measure: labels are images in [0, 1]; checks the data is there."""
        from keras_cvae.tasks.pose import pipeline

        pipeline.resolve_pose_source(data)
        return {}

    def model_config(self, info):
        from keras_cvae.tasks.pose.config import PoseModelConfig

        return PoseModelConfig.from_dict(info["model"])

    def build_model(self, info, seed):
        from keras_cvae.tasks.pose.model import PoseCVAE

        return PoseCVAE(self.model_config(info), seed=seed)

    def register_models(self):
        from keras_cvae.tasks.pose import model  # noqa: F401

    def cpu_warning(self, job, accelerator):
        """None: every pose preset's run ends within hours on a CPU, or is the lab's GPU run."""
        return None

    def data_errors(self, source):
        """No translation needed: the pose reader raises `DataError` itself."""
        return contextlib.nullcontext()

    def training_data(self, info, train_config, engine, start_batch, shard):
        """The training stream from global batch `start_batch` on: this process's `shard`
        of every batch of `train_config.batch_size` windows."""
        from keras_cvae.tasks.pose import pipeline

        config = self.model_config(info)
        return pipeline.make_pose_dataset(info["data"], "train", length=config.window_length,
                                          batch_size=train_config.batch_size, training=True,
                                          seed=train_config.seed, start_batch=start_batch,
                                          shard=shard)

    def validation_batches(self, info, train_config, engine) -> list:
        """The first validation videos, whole (the lab validates on full 630-frame rollouts)."""
        from keras_cvae.tasks.pose import pipeline

        config = self.model_config(info)
        dataset = pipeline.make_pose_dataset(info["data"], "val", length=config.video_length,
                                             batch_size=train_config.batch_size, training=False)
        return [dataset[i] for i in range(min(train_config.validation_steps, len(dataset)))]

    def protocol(self, config, n_past, horizon) -> tuple:
        """(1, horizon): the first frame only, then `horizon` frames (default: the rest of a video)."""
        from keras_cvae.evaluation.protocol import EvaluationError

        if n_past not in (None, 1):
            raise EvaluationError(f"n_past (--n-past) must be 1 for the pose task (the first frame), got {n_past}")
        horizon = config.video_length - 1 if horizon is None else int(horizon)
        if horizon < 1:
            raise EvaluationError(f"horizon (--horizon) must be at least 1, got {horizon}")
        return 1, horizon

    def protocol_sentence(self, protocol) -> str:
        last = protocol["context_frames"] + protocol["horizon"]
        return (
            f"Protocol (pose task): from the first frame only (excluded from the scores), "
            f"{protocol['horizon']} frames rolled out (frames 2-{last}, a {last}-frame video), each "
            f"given its pose label and the model's own previous prediction, latents from N(0, I); "
            f"{protocol['sequences']} videos of the {protocol['split']} split of {protocol['data']}; "
            f"{protocol['samples']} samples per video, seed {protocol['seed']}; checkpoint "
            f"{protocol['checkpoint']}. Values: mean over videos and predicted frames +- standard error over "
            "videos. PSNR = 10 log10(1/MSE) per frame on [0, 1] images; SSIM: 11x11 Gaussian window, "
            "sigma 1.5. The baseline copies the first frame."
        )

    def describe(self, source, config) -> dict:
        from keras_cvae.tasks.pose import pipeline

        return pipeline.describe_pose_source(source, config.video_length)

    def evaluation_data(self, source, split, n_past, horizon, batch_size):
        """The split cut into consecutive videos of 1 + horizon frames."""
        from keras_cvae.tasks.pose import pipeline

        return pipeline.make_pose_dataset(source, split, length=n_past + horizon,
                                          batch_size=batch_size, training=False, progress=True)

    def export_graphs(self, model):
        from keras_cvae.tasks.pose.export import export_graphs

        return export_graphs(model)

    def recognises_conditions(self, suffixes) -> bool:
        """Pose labels come as PNG images."""
        return suffixes == {".png"}

    def predict_files(self, config, metadata):
        from keras_cvae.tasks.pose.onnx_files import predict_files

        return predict_files(config, metadata)
