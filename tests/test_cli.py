"""The commands: each README command is a `keras_cvae.cli` module, an installed entry point
and a `scripts/` wrapper, with the same `main`."""

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keras_cvae.cli.common import HelpFormatter

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("train", "evaluate", "export", "predict_onnx", "make_dataset", "convert_dataset")


def entry_points():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_is_an_entry_point_and_a_script(name):
    target = entry_points()[f"keras-cvae-{name.replace('_', '-')}"]
    module_name, function = target.split(":")
    assert module_name == f"keras_cvae.cli.{name}" and function == "main"
    assert callable(getattr(importlib.import_module(module_name), function))
    wrapper = (ROOT / "scripts" / f"{name}.py").read_text()
    assert f"from keras_cvae.cli.{name} import main" in wrapper and "sys.path" not in wrapper


def test_every_entry_point_is_a_command():
    assert sorted(entry_points()) == sorted(f"keras-cvae-{n.replace('_', '-')}" for n in COMMANDS)


def test_a_wrapper_runs_the_command():
    result = subprocess.run([sys.executable, "scripts/make_dataset.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert "--train" in result.stdout and "1280" in result.stdout


def test_help_shows_a_default_once_and_never_none():
    import argparse

    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--a", type=int, default=3, help="plain")
    parser.add_argument("--b", default=None, help="none")
    parser.add_argument("--c", type=int, default=4, help="its own (default: four)")
    text = parser.format_help()
    assert "plain (default: 3)" in text and "(default: None)" not in text
    assert text.count("default") == 2
