"""The task registry and contract: every task has every member, only task folders name tasks."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from keras_cvae import tasks
from keras_cvae.tasks.contract import Task

PACKAGE = Path(tasks.__file__).parents[1]


def contract_methods():
    return {name: member for name, member in vars(Task).items()
            if callable(member) and not name.startswith("_")}


@pytest.mark.parametrize("name", tasks.TASKS)
def test_every_task_has_every_member_of_the_contract(name):
    task = tasks.get_task(name)
    assert task.name == name
    for attribute, kind in Task.__annotations__.items():
        assert isinstance(getattr(task, attribute), kind), attribute
    for method, declared in contract_methods().items():
        given = getattr(task, method)
        wanted = list(inspect.signature(declared).parameters)[1:]
        assert list(inspect.signature(given).parameters) == wanted, method


@pytest.mark.parametrize("name", tasks.TASKS)
def test_every_task_default_preset_is_one_of_its_presets(name):
    task = tasks.get_task(name)
    assert task.default_preset in task.presets()


def test_presets_have_one_task_each():
    names = [preset for task in tasks.REGISTRY.values() for preset in task.presets()]
    assert len(names) == len(set(names)) == len(tasks.all_presets())


def test_an_unknown_task_is_one_line_naming_the_known_ones():
    with pytest.raises(ValueError) as error:
        tasks.get_task("dance")
    assert str(error.value) == f"task (--task) must be one of {', '.join(tasks.TASKS)}, got 'dance'"


def test_a_run_without_a_task_is_the_default_one():
    assert tasks.task_of({}).name == tasks.DEFAULT_TASK
    assert tasks.task_of({"task": "pose"}).name == "pose"


def _string_constants(tree):
    """String constants of a module that are not docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_module_outside_the_task_folders_names_a_task():
    """Whatever differs between tasks is asked of the registry, never decided by a name."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "tasks") in path.parents:
            continue
        for node in _string_constants(ast.parse(path.read_text())):
            if node.value in tasks.TASKS:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_the_check_finds_a_task_name_where_there_is_one():
    tree = ast.parse('"""Module docstring naming pose."""\nif task == "pose":\n    pass\n')
    assert [node.value for node in _string_constants(tree)] == ["pose"]


def test_reading_the_registry_imports_neither_keras_nor_tensorflow():
    """ONNX inference asks the registry for an export's task on machines without either."""
    code = ("import sys; from keras_cvae import tasks; tasks.get_task('pose').inputs_help; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip() == "[]"
