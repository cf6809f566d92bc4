"""Checks on output paths, made before anything is written, so that a bad `--out` fails
with one line instead of an OSError half-way through."""

import os
from pathlib import Path
from typing import Optional


def why_not_creatable(path) -> Optional[str]:
    """Why the folder `path` could not be created (or written into), or None if it can.

    Args:
        path: A folder that may not exist yet.

    Returns:
        None, or a reason such as "/a/b is a file, not a folder".
    """
    path = Path(path).expanduser().absolute()
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                return f"{existing} is a file, not a folder"
            if not os.access(existing, os.W_OK | os.X_OK):
                return f"{existing} is not writable"
            return None
    return None
