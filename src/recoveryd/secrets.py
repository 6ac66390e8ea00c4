"""Secrets by reference, and their redaction.

A secret is never a value in the configuration, only a reference:

- `env:NAME` -> the environment variable NAME;
- `credential:NAME` -> the file `$CREDENTIALS_DIRECTORY/NAME` (systemd `LoadCredential=`);
- anything else is a file path (the `*_file` settings), relative to the
  configuration file's directory; its contents without a trailing newline.

Errors name the setting and the reference, never the value. `Redactor` holds
the values resolved so far and replaces them (and passwords written into DSNs
or URIs) with `***` in any text shown to a person: logs, errors, reports,
journals.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from recoveryd.errors import ConfigError

MASK = "***"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CRED_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")

# password=secret / password='se cret' in libpq keyword DSNs (and PGPASSWORD=... in commands),
# "password": "secret" in JSON. Not `password: text`: that is how error messages name a setting.
_KV_PASSWORD = re.compile(
    r"(?i)\b((?:pg)?password|passwd|pwd|secret(?:_access_key)?|token)"
    r"(\s*=\s*|[\"']\s*:\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&]+)"
)
# scheme://user:secret@host in URIs
# Bounded repetitions and a look-behind anchor keep this linear on long output without URIs.
_URI_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}://[^:/@\s]{0,256}:)([^@\s/]{1,512})(@)"
)
# ?password=secret in URI query strings is covered by _KV_PASSWORD


def resolve_secret(ref: str, base_dir: Path, *, setting: str = "secret") -> str:
    """The secret `ref` points to.

    `setting` names the configuration key for error messages
    (`sources.population.password_file`). The resolved value is remembered by
    the process-wide redactor. Raises ConfigError (exit 2) naming the setting
    and the reference when it cannot be read or is empty.
    """
    value = _read(ref.strip(), base_dir, setting)
    if not value:
        raise ConfigError(f"{setting}: {ref} is empty; put the secret there")
    REDACTOR.add(value)
    return value


def _read(ref: str, base_dir: Path, setting: str) -> str:
    if ref.startswith("env:"):
        name = ref[4:]
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{setting}: {ref!r} is not a valid environment variable reference")
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(
                f"{setting}: environment variable {name} is not set; export it or use a *_file"
            )
        return value
    if ref.startswith("credential:"):
        name = ref[len("credential:") :]
        if not _CRED_NAME.match(name):
            raise ConfigError(f"{setting}: {ref!r} is not a valid credential name")
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if not cred_dir:
            raise ConfigError(
                f"{setting}: {ref} needs $CREDENTIALS_DIRECTORY; load it with systemd "
                "LoadCredential= or use a *_file"
            )
        return _read_file(Path(cred_dir) / name, setting, ref)
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return _read_file(path, setting, ref)


def _read_file(path: Path, setting: str, ref: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{setting}: secret file {ref} not found; create it or fix the path"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"{setting}: secret file {ref} is not readable by this user; fix its owner or mode"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{setting}: {ref} is a directory, not a secret file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: secret file {ref} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read secret file {ref}: {exc.strerror}") from None
    return text.removesuffix("\n").removesuffix("\r")


class Redactor:
    """Replaces known secret values, and passwords inside DSNs and URIs, with `***`.

    Thread-safe. Values shorter than 4 characters are not registered (they would
    mask ordinary words); DSN/URI passwords are masked whatever their length.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        """Remember a secret value to mask from now on."""
        if len(value) >= 4:
            with self._lock:
                self._values.add(value)

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        """`text` with every known secret and every DSN/URI password replaced by `***`."""
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for v in values:
            if v in text:
                text = text.replace(v, MASK)
        text = _URI_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
        return _KV_PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


REDACTOR = Redactor()
"""The process-wide redactor: `resolve_secret` registers every value it returns."""


def redact(text: str) -> str:
    """Redact `text` with the process-wide redactor."""
    return REDACTOR.redact(text)
