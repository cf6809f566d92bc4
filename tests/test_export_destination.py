"""An export replaces only an earlier export: anything else at --out is refused, untouched."""

import pytest

from keras_cvae.export.config import ExportError
from keras_cvae.export.destination import check_destination


def test_a_new_or_empty_folder_or_an_earlier_export_may_be_written(tmp_path):
    check_destination(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_destination(tmp_path / "empty")
    earlier = tmp_path / "earlier"
    (earlier / "saved_model").mkdir(parents=True)
    for name in ("model.onnx", "step.onnx", "metadata.json"):
        (earlier / name).write_text("x")
    check_destination(earlier)


@pytest.mark.parametrize("contents, named", [
    ({"thesis.txt": "precious"}, "thesis.txt"),
    ({"run.json": "{}", "model.keras": "x", "metadata.json": "{}"}, "model.keras, run.json"),
    ({"model.onnx": "x"}, "no metadata.json"),
])
def test_anything_else_is_refused_and_left_as_it_was(tmp_path, contents, named):
    folder = tmp_path / "out"
    folder.mkdir()
    for name, text in contents.items():
        (folder / name).write_text(text)
    with pytest.raises(ExportError, match=f"{folder}: exists and is not an export folder \\({named}"):
        check_destination(folder)
    assert {p.name: p.read_text() for p in folder.iterdir()} == contents


def test_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(ExportError, match="is not a folder"):
        check_destination(tmp_path / "out")
