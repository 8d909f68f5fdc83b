"""Errors the user can act on.  Every message says what went wrong and, where
there is one, the next command to run."""
from __future__ import annotations


class RagError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(RagError):
    exit_code = 2


class InputError(RagError):
    """A question, top_k, or input file the user gave is not usable."""

    exit_code = 2


class CorpusError(RagError):
    exit_code = 3


class IndexNotFoundError(RagError):
    exit_code = 4


class IndexStaleError(RagError):
    """The index was built from another corpus, model or settings."""

    exit_code = 5


class IndexCorruptError(RagError):
    exit_code = 6


class ModelError(RagError):
    exit_code = 7


class CitationError(RagError):
    """A quote does not match the characters its citation points to."""

    exit_code = 8


class WriteError(RagError):
    """An output (answers file, index build) could not be written: disk full,
    no permission, a path that is not a directory.  What was written before
    is kept (batch output) or still in use (the previous index)."""

    exit_code = 9
