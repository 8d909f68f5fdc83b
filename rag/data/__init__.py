"""The project's tables and fitted values (TOML and word lists), read by one
cached loader: every stage asks ``load_table("question_types.toml")`` instead of
opening the file itself."""
from __future__ import annotations

import copy
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path


def data_path(name: str) -> Path:
    """Where a data file (or the ``reader`` folder) of the package lives."""
    return Path(str(resources.files("rag.data").joinpath(name)))


@lru_cache(maxsize=None)
def _parsed(name: str) -> dict:
    return tomllib.loads(resources.files("rag.data").joinpath(name).read_text("utf-8"))


def load_table(name: str) -> dict:
    """A TOML table of the package, parsed once; each caller gets its own copy."""
    return copy.deepcopy(_parsed(name))


def load_text(name: str) -> str:
    """A text file of the package (word lists)."""
    return resources.files("rag.data").joinpath(name).read_text(encoding="utf-8")
