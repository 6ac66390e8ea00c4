"""One error tree for the whole product.

Every error carries the one-sentence message an operator reads and the exit code
of the README's table. Nothing below the CLI prints; the CLI turns these into a line on
stderr and the exit code. `transient` marks errors worth retrying.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes documented in the README."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INTEGRITY = 3
    OBJECTIVE_MISSED = 4
    REFUSED = 5
    DEGRADED = 6
    INTERRUPTED = 130


class RecoverydError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def code(self) -> str:
        """A stable, machine-readable name of the error: its class in snake case without
        "Error" (`usage`, `config`, `repository_missing`, `integrity`, `store`...)."""
        return error_code(type(self))


def error_code(cls: type[BaseException]) -> str:
    """`RepositoryMissingError` -> `repository_missing`."""
    name = cls.__name__.removesuffix("Error") or cls.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class UsageError(RecoverydError):
    """Bad arguments on the command line."""

    exit_code = ExitCode.USAGE


class SnapshotNotFoundError(UsageError):
    """No snapshot with that id (or id prefix) in a target."""


class AmbiguousSnapshotError(UsageError):
    """A snapshot id prefix matches several snapshots."""


class ConfigError(RecoverydError):
    """Malformed or inconsistent configuration (or playbook): names the file, line and key path."""

    exit_code = ExitCode.USAGE

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        prefix = f"{key}: " if key else ""
        super().__init__(f"{where}{prefix}{message}")
        self.detail = message
        self.path = path
        self.line = line
        self.key = key


class RepositoryMissingError(RecoverydError):
    """A target holds no repository: `recoveryd init` creates it (nothing else does)."""

    exit_code = ExitCode.USAGE

    def __init__(self, target: str, location: str) -> None:
        super().__init__(
            f"target {target}: no repository at {location}; create it with "
            f"`recoveryd init {target}` (or fix the target's path if it is a typo)"
        )
        self.target = target
        self.location = location


class ConfigProblems(ConfigError):  # noqa: N818 - a list of ConfigErrors, named as one
    """Several problems found at once (`config check`, `drill validate` report them all):
    the message has one line per problem, each naming its file, line and key path."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.detail, path=first.path, line=first.line, key=first.key)
        self.problems = tuple(problems)
        self.message = "\n".join(p.message for p in self.problems)


def problems_error(problems: Sequence[ConfigError]) -> ConfigError:
    """One ConfigError for a list of problems: the problem itself when there is one."""
    flat: list[ConfigError] = []
    for p in problems:
        flat.extend(p.problems if isinstance(p, ConfigProblems) else (p,))
    unique = list({p.message: p for p in flat}.values())
    return unique[0] if len(unique) == 1 else ConfigProblems(unique)


class IntegrityError(RecoverydError):
    """Stored data failed authentication or is missing: a corrupted or tampered snapshot."""

    exit_code = ExitCode.INTEGRITY

    def __init__(
        self, message: str, *, snapshot: str | None = None, obj: str | None = None
    ) -> None:
        super().__init__(message)
        self.snapshot = snapshot
        self.obj = obj


class RefusedError(RecoverydError):
    """The operation was refused: a lock is held, approval is missing, shedding is in force."""

    exit_code = ExitCode.REFUSED


class ForceRequiredError(RecoverydError):
    """Refused because it would remove much at once (a prune forgetting more than half of a
    source's snapshots): an operator must confirm with `--force`. Not retried by the daemon."""

    exit_code = ExitCode.REFUSED


class StoreError(RecoverydError):
    """An object store operation failed."""


class TransientStoreError(StoreError):
    """A store failure worth retrying (timeouts, 5xx, throttling, connection resets)."""

    transient = True


class NotFoundError(StoreError):
    """The named object does not exist."""


class PreconditionFailedError(StoreError):
    """A conditional write found the object already present."""


class SourceError(RecoverydError):
    """A database or directory could not be read or restored (tool missing, bad password...)."""


class RemoteError(RecoverydError):
    """An SSH connection or remote command failed."""


class HostKeyError(RemoteError):
    """A host key is unknown or changed: the connection is refused."""


class KeyFileError(RecoverydError):
    """The master key file is missing, unreadable or malformed."""

    exit_code = ExitCode.USAGE


class InterruptedOperation(RecoverydError):  # noqa: N818 - reads as a sentence at the call site
    """SIGINT/SIGTERM arrived; the operation stopped cleanly."""

    exit_code = ExitCode.INTERRUPTED
