"""The one error type the data layer raises for bad input, and `pipeline_errors`, which turns
the tf.data pipeline's failures back into it."""

import contextlib
import re
import sys

# In-graph checks cannot raise a Python exception; their assertion message starts with this
# marker instead, and `pipeline_errors` turns it back into a DataError.
MARKER = "DataError: "
# The marked text ends where TensorFlow appends the failing node or op.
_MARKED = re.compile(re.escape(MARKER) + r"(.*?)\]?\s*(?:\[\[|\[Op:|\(defined at|$)")
# TensorFlow's own read errors that name no file: a corrupt record (CRC), an undecodable
# Example or PNG, a missing file, an unparsable CSV number.
_UNNAMED = ("DataLossError", "InvalidArgumentError", "NotFoundError")


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent.

    The message is one line that names the offending file (and the record index inside a
    TFRecord file where there is one), so scripts can print it as `error: <message>`.
    """


def marked_message(text: str):
    """The DataError message inside a TensorFlow error text, or None if it carries no marker.

    Args:
        text: The TensorFlow error's message.
    """
    text = " ".join(text.split())
    found = _MARKED.search(text)
    return found.group(1).strip() if found else None


def locate_fault(source):
    """Re-reads `source` with the NumPy readers and returns the first DataError, or None.

    Used after TensorFlow failed on a record without saying where: the NumPy readers check
    framing, CRCs and content of every record (BAIR) or every PNG and CSV (lab folders).

    Args:
        source: A BAIR or lab-folder dataset directory (or a resolved `Source`).
    """
    from keras_cvae.data import bair_tfrecord, lab_folders, pipeline

    try:
        src = pipeline.resolve_source(source)
        if src.kind == "bair":
            bair_tfrecord.validate_tfrecords(src.root)
        elif src.kind == "lab":
            for split in lab_folders.SPLIT_DIRS.values():
                if (src.root / split).is_dir():
                    for folder in lab_folders.list_sequences(src.root / split):
                        lab_folders.read_sequence(folder)
    except DataError as error:
        return error
    return None


@contextlib.contextmanager
def pipeline_errors(source=None):
    """Turns a TensorFlow error met while reading batches into a one-line DataError.

    Wrap whatever iterates a `make_dataset` pipeline (`model.fit`, a loop over batches):

        with pipeline_errors(data):
            model.fit(make_dataset(data, "train", ...), ...)

    Errors of the pipeline's in-graph checks (their message carries the DataError marker)
    become `DataError("<file>: record <i>: ...")`. TensorFlow's own read errors name no
    file; with a `source`, the NumPy readers re-read it to find and name the bad file.
    Anything else passes unchanged, and without TensorFlow loaded (the NumPy engine raises
    DataError itself) there is nothing to translate.

    Args:
        source: The dataset directory the batches come from, used to locate a fault that
            TensorFlow does not name; None: translate marked errors only.

    Raises:
        DataError: The translated error.
    """
    try:
        yield
    except Exception as error:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(error, tf.errors.OpError):
            raise
        message = marked_message(str(getattr(error, "message", error)))
        if message is not None:
            raise DataError(message) from None
        # Only errors of the input pipeline (its IteratorGetNext op) are worth a re-read.
        if source is None or type(error).__name__ not in _UNNAMED or "IteratorGetNext" not in str(error):
            raise
        located = locate_fault(source)
        if located is None:
            raise
        raise located from None
