"""pyproject.toml declares what requirements.txt pins, and its entry points exist."""

import importlib
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _key(requirement: str):
    parsed = Requirement(requirement)
    return canonicalize_name(parsed.name), frozenset(parsed.extras), str(parsed.specifier), str(parsed.marker)


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements_txt():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {_key(line) for line in (line.split("#")[0].strip() for line in lines) if line}


def test_pyproject_declares_the_pins_of_requirements_txt():
    project = _pyproject()
    runtime = {_key(r) for r in project["dependencies"]}
    test_only = {_key(r) for r in project["optional-dependencies"]["test"]}
    # requirements.txt is the runtime and the test requirements in one list.
    assert runtime | test_only == _requirements_txt()
    assert not runtime & test_only


def test_every_entry_point_is_a_callable():
    for name, target in _pyproject()["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
