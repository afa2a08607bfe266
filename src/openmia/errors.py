"""The exceptions every user-facing failure of openmia is raised as.

Each message names the file/case/field, what was expected, what was found and how to fix it.
Subclasses also derive from the matching builtin (ValueError, LookupError, ...) so callers that
catch builtins keep working.
"""

from __future__ import annotations


class OpenmiaError(Exception):
    """Base class of all errors openmia raises on bad input or bad state."""


class ConfigError(OpenmiaError, ValueError):
    """A configuration key or value is invalid (unknown key, wrong type, out of range)."""


class UnknownNameError(OpenmiaError, LookupError):
    """A model/dataset/metric name is not registered; the message lists close matches."""


class DataError(OpenmiaError, ValueError):
    """A data file is missing, corrupt, truncated or has the wrong shape/content."""


class ChecksumError(DataError):
    """A downloaded or imported file does not have the expected checksum."""


class DownloadError(DataError):
    """A download failed (connection refused, cut mid-way, HTTP error)."""


class PredictionError(OpenmiaError, ValueError):
    """A prediction or truth file violates the evaluation standard's rules (DESIGN §4.3)."""


class RunDirError(OpenmiaError, ValueError):
    """A directory given as a run directory is not one (or is incomplete)."""


class OutputError(OpenmiaError, OSError):
    """An output file or folder cannot be written (read-only folder, a file where a folder is
    expected, disk full); the message names the path and the operating system's reason."""


class OutputConflictError(OpenmiaError, ValueError):
    """An output folder is (or contains, or lies inside) an input, or already holds results and
    ``--overwrite`` was not given."""


class RunIndexError(OpenmiaError, RuntimeError):
    """The run index (``runs.sqlite``) is corrupt or cannot be used; ``openmia runs rebuild`` re-creates it."""
