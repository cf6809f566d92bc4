"""`BairTask`: SVG on BAIR-layout video, the task contract of the SVG family."""

from dataclasses import dataclass

from keras_cvae.config import replace


@dataclass(frozen=True)
class BairTask:
    """SVG on BAIR-layout data (TFRecords, TFDS, lab folders, the embedded pushing data).

    See `keras_cvae.tasks.contract.Task` for what each member is for.
    """

    name: str = "bair"
    summary: str = "SVG on action-conditioned robot pushing (64x64)"
    default_preset: str = "svg"
    presets_help: str = ("svg = the reference BAIR settings (needs a GPU), medium = svg at 3/8 width "
                         "(model.onnx under 25 MB; a GPU), small = narrow model for CPU demos, tiny = unit tests")
    default_split: str = "test"
    default_eval_batch: int = 16
    protocol_notes: tuple = ()  # nothing to add to metrics.json's protocol
    inputs_help: str = "context frames and actions.csv + endeffector_positions.csv (or one 7-column CSV)"

    def presets(self) -> dict:
        from keras_cvae.tasks.svg.config import presets

        return presets()

    def configure(self, model_config, flags: dict):
        """Applies --prior, --latents and --conditioning."""
        return replace(model_config, **flags)

    def model_config(self, info):
        from keras_cvae.tasks.svg.config import SVGConfig

        return SVGConfig.from_dict(info["model"])

    def run_info(self, data, engine) -> dict:
        """The condition statistics of the data, which the model normalises with."""
        from keras_cvae import data as data_lib

        mean, std = data_lib.condition_statistics(data, engine=engine)
        return {"condition_mean": mean.tolist(), "condition_std": std.tolist()}

    def build_model(self, info, seed):
        from keras_cvae.tasks.svg.model import SVG

        return SVG(self.model_config(info), condition_mean=info["condition_mean"],
                   condition_std=info["condition_std"], seed=seed)

    def register_models(self):
        from keras_cvae.tasks.svg import model  # noqa: F401

    def cpu_warning(self, job, accelerator):
        from keras_cvae.tasks.svg.cpu_warning import available_cores, cpu_warning

        return cpu_warning(job.preset, job.model, job.train, accelerator, available_cores())

    def data_errors(self, source):
        """The tf.data pipeline's errors as `DataError`s naming the source."""
        from keras_cvae import data as data_lib

        return data_lib.pipeline_errors(source)

    def training_data(self, info, train_config, engine, start_batch, shard):
        from keras_cvae import data as data_lib

        config = self.model_config(info)
        return data_lib.make_dataset(info["data"], "train", n_past=config.n_past, n_future=config.n_future,
                                     batch_size=train_config.batch_size, training=True,
                                     seed=train_config.seed, engine=engine, start_batch=start_batch,
                                     shard=shard)

    def validation_batches(self, info, train_config, engine) -> list:
        from keras_cvae import data as data_lib

        config = self.model_config(info)
        dataset = data_lib.make_dataset(info["data"], "val", n_past=config.n_past, n_future=config.n_future,
                                        batch_size=train_config.batch_size, training=False, engine=engine)
        return list(data_lib.iterate_numpy(dataset, max_batches=train_config.validation_steps))

    def protocol(self, config, n_past, horizon) -> tuple:
        """See `evaluation.protocol.resolve_protocol`."""
        from keras_cvae.evaluation.protocol import resolve_protocol

        return resolve_protocol(config, n_past, horizon)

    def protocol_sentence(self, protocol) -> str:
        first = protocol["context_frames"] + 1
        last = protocol["context_frames"] + protocol["horizon"]
        trained = protocol.get("trained_context_frames")
        note = f" (the model was trained with {trained})" if trained not in (None, protocol["context_frames"]) else ""
        return (
            f"Protocol: {protocol['context_frames']} context frames{note}, excluded from the scores; "
            f"{protocol['horizon']} predicted frames (frames {first}-{last}), teacher forcing off, latents "
            f"from the prior; {protocol['sequences']} sequences of the {protocol['split']} split of "
            f"{protocol['data']}; {protocol['samples']} samples per sequence (best of N picks, per sequence "
            f"and metric, the sample with the highest horizon-averaged score), seed {protocol['seed']}; "
            f"checkpoint {protocol['checkpoint']}. Values: mean over sequences and predicted frames "
            "+- standard error over sequences. PSNR = 10 log10(1/MSE) per frame on [0, 1] images; "
            "PSNR per channel is the SVG reference's \"finn\" variant; SSIM: 11x11 Gaussian window, sigma 1.5."
        )

    def describe(self, source, config) -> dict:
        from keras_cvae import data as data_lib

        return data_lib.describe_source(source)

    def evaluation_data(self, source, split, n_past, horizon, batch_size):
        from keras_cvae import data as data_lib

        return data_lib.make_dataset(source, split, n_past=n_past, n_future=horizon,
                                     batch_size=batch_size, training=False)

    def export_graphs(self, model):
        from keras_cvae.tasks.svg.export import export_graphs

        return export_graphs(model)

    def recognises_conditions(self, suffixes) -> bool:
        """Actions and end-effector positions come as CSV files."""
        return ".csv" in suffixes

    def predict_files(self, config, metadata):
        from keras_cvae.tasks.svg.onnx_files import predict_files

        return predict_files(config, metadata)
