"""The one error type the data layer raises for bad input."""


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent.

    The message is one line that names the offending file (and the record index inside a
    TFRecord file where there is one), so scripts can print it as `error: <message>`.
    """
