"""Exception types raised by a2v.

Every error names the file it concerns and the cause, so that a failing clip can be
reported and skipped while the others go on.
"""

from __future__ import annotations

from pathlib import Path


class A2VError(Exception):
    """Base class of every error a2v raises on purpose."""


class MediaError(A2VError):
    """A media file is missing, corrupt, silent or has unsupported properties.

    Args:
        path: the offending file.
        cause: one sentence saying what is wrong.
    """

    def __init__(self, path: str | Path, cause: str):
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class NoFaceError(MediaError):
    """No usable face was found in an image or in a clip's frames."""


class MultipleFacesError(MediaError):
    """Two or more faces of similar size are in a clip's frames: which one speaks is ambiguous."""


class PoseRejectedError(MediaError):
    """A clip's head pose leaves the configured limits in too many frames."""


class ConfigError(A2VError):
    """The configuration file fails its JSON schema or names something unknown."""


class ArchiveError(A2VError):
    """An archive is corrupt or holds unsafe entries (absolute paths, ``..``, links)."""


class ShardSchemaError(A2VError):
    """An HDF5 feature shard was written with another schema version."""
