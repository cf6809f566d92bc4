"""`Task`: what a model family gives the shared training, evaluation, export and inference.

The shared code (`keras_cvae.training`, `keras_cvae.evaluation`, `keras_cvae.export`,
`keras_cvae.onnx_inference`, the command lines) never names a model family: it asks the run's
task, found in the registry (`keras_cvae.tasks`) by the name run.json, metrics.json and
metadata.json record. A task module imports its model, data and export code only inside its
methods, so that reading the registry stays light (ONNX inference runs without Keras).
"""

from typing import Optional, Protocol


class Task(Protocol):
    """The contract of a model family.

    Attributes:
        name: The name runs and exports record ("task" in run.json and metadata.json) and
            `--task` takes.
        summary: One line for `--task`'s help.
        default_preset: The preset a new run of the task uses unless told.
        presets_help: One line for `--preset`'s help: the task's presets and what each is for.
        default_split: The split evaluation scores unless told.
        default_eval_batch: Sequences per evaluation rollout call unless told.
        inputs_help: What ONNX inference from files takes, completing "which takes ...".
        protocol_notes: (key, value) pairs added to metrics.json's protocol.
    """

    name: str
    summary: str
    default_preset: str
    presets_help: str
    default_split: str
    default_eval_batch: int
    inputs_help: str
    protocol_notes: tuple

    def presets(self) -> dict:
        """The task's named presets: name -> `config.Preset`."""

    def configure(self, model_config, flags: dict):
        """`model_config` with the model flags given on the command line (name -> value,
        None for not given) applied; raises ValueError for flags the task does not take."""

    def model_config(self, info: dict):
        """The model config of a run from its run.json content."""

    def run_info(self, data, engine) -> dict:
        """The task's entries of a new run.json (e.g. data statistics the model needs)."""

    def build_model(self, info: dict, seed: int):
        """A new, unbuilt model of a run from its run.json content."""

    def register_models(self):
        """Imports the task's model classes, so that Keras can load its `.keras` files."""

    def cpu_warning(self, job, accelerator: bool) -> Optional[str]:
        """One line warning that a new run (a `training.TrainingJob`) would take far too long
        on this machine's CPU cores, where `accelerator` is False; or None."""

    def data_errors(self, source):
        """A context manager turning the task's data-reading errors into a `DataError`."""

    def training_data(self, info, train_config, engine, start_batch, shard):
        """The training stream from global batch `start_batch` on: this process's `shard`
        of every batch."""

    def validation_batches(self, info, train_config, engine) -> list:
        """The validation batches of every epoch."""

    def protocol(self, config, n_past, horizon) -> tuple:
        """The (n_past, horizon) of an evaluation from the requested ones (None: default)."""

    def protocol_sentence(self, protocol: dict) -> str:
        """One paragraph stating metrics.json's protocol, for under the table."""

    def describe(self, source, config) -> dict:
        """metrics.json's description of the evaluated data."""

    def evaluation_data(self, source, split, n_past, horizon, batch_size):
        """The batches an evaluation scores: n_past + horizon frames each."""

    def export_graphs(self, model):
        """The `export.graphs.ExportGraphs` of a trained model."""

    def recognises_conditions(self, suffixes: set) -> bool:
        """Whether files with these suffixes are the task's ONNX conditions."""

    def predict_files(self, config, metadata: dict):
        """ONNX inference from files (`onnx_inference.PredictConfig`) with an export of the
        task: (predicted frames, written paths)."""
