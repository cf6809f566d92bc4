"""The one error type the data layer raises for bad input, and its marker in graph messages."""

import re

# In-graph checks cannot raise a Python exception; their assertion message starts with this
# marker instead, and `tf_pipeline.pipeline_errors` turns it back into a DataError.
MARKER = "DataError: "
# The marked text ends where TensorFlow appends the failing node or op.
_MARKED = re.compile(re.escape(MARKER) + r"(.*?)\]?\s*(?:\[\[|\[Op:|\(defined at|$)")


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
