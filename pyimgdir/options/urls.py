"""Directories given as URLs: which strings are URLs (a leaf every stage may import)."""

from __future__ import annotations

import re

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(directory) -> bool:
    """True for ``scheme://...`` strings (local paths, ``pathlib.Path`` objects are not)."""
    return isinstance(directory, str) and bool(_URL.match(directory))
