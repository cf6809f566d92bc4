"""The registry of tasks: the one place that knows which model families exist.

"bair": SVG on action-conditioned robot-pushing video (`keras_cvae.tasks.svg`).
"pose": the pose-conditioned CVAE on 32 x 64 dance video (`keras_cvae.tasks.pose`).

Training, evaluation, export, ONNX inference and the command lines ask a run's task (see
`keras_cvae.tasks.contract.Task`) for whatever differs between families. Runs and exports
record their task's name ("task" in run.json, metrics.json and metadata.json); those
without one are "bair" ones, which is how they were written before they named it.
"""

from keras_cvae.tasks.pose.task import PoseTask
from keras_cvae.tasks.svg.task import BairTask

DEFAULT_TASK = "bair"
REGISTRY = {task.name: task for task in (BairTask(), PoseTask())}
TASKS = tuple(REGISTRY)


def check_task(name: str) -> str:
    """Returns `name` if a task has it, else raises a one-line ValueError."""
    if name not in REGISTRY:
        raise ValueError(f"task (--task) must be one of {', '.join(TASKS)}, got {name!r}")
    return name


def get_task(name):
    """The task called `name`."""
    return REGISTRY[check_task(name)]


def task_of(info):
    """The task of a run or an export from its run.json or metadata.json content."""
    return get_task(info.get("task", DEFAULT_TASK))


def all_presets() -> dict:
    """Every task's presets: preset name -> (task name, `config.Preset`)."""
    return {name: (task.name, preset) for task in REGISTRY.values() for name, preset in task.presets().items()}


def register_models():
    """Imports every task's model classes, so that Keras can load any run's `.keras` file."""
    for task in REGISTRY.values():
        task.register_models()
