"""What is secret, and the one redactor that keeps it out of everything written.

The rule, in one place:

- a *name* is secret when `is_secret_name` says so (`password`, `db_pass`, `PGPASSWORD`,
  `api_token`, `secret_access_key`, `Authorization`, `Cookie`, `X-Api-Key`...), except
  names of a place where a secret is kept (`password_file`, `key_path`, `*_dir`, `*_ref`);
  the value of a secret name is masked in arguments, mappings, headers and `name=value`;
- a *password inside a DSN or URL* is masked: `scheme://user:PASS@host`,
  `password=PASS` in a libpq DSN, `?access_token=PASS` or `?key=PASS` in a query string;
- a *header value* of a secret header is masked (`Authorization: Bearer ***`, `Cookie: ***`);
- every *value* read through a secret reference (`resolve_secret`: secret files'
  contents, environment variables, systemd credentials), every password written into a
  configured DSN or URL, and every secret drill variable or header is registered with
  the process-wide `REDACTOR` and masked wherever it appears afterwards.

`REDACTOR` is the only redactor: logging (`observe`), errors (`cli.output`), the audit
log, drill journals, the state database, reports, notifications and metrics labels all
pass their text through it. Secrets are never values in the configuration, only
references, resolved by `resolve_secret`:

- `env:NAME` -> the environment variable NAME;
- `credential:NAME` -> the file `$CREDENTIALS_DIRECTORY/NAME` (systemd `LoadCredential=`);
- anything else is a file path (the `*_file` settings), relative to the
  configuration file's directory; its contents without a trailing newline.

Errors name the setting and the reference, never the value.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recoveryd.errors import ConfigError

MASK = "***"
_MIN_LEN = 4  # shorter values would mask ordinary words
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CRED_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")

_SECRET_WORD = re.compile(
    r"pass(?![a-z])|password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credential|authorization|cookie|session[_-]?id",
    re.IGNORECASE,
)
_PLACE_SUFFIXES = ("_file", "_path", "_dir", "_ref", "-file", "-path", "-dir")

# A secret-looking name as it appears in running text (environment assignment, DSN key).
# Not `credential`: systemd's `LoadCredential=NAME:PATH` names a file, not a secret.
_NAME = (
    r"[A-Za-z0-9_-]*(?:pass(?![A-Za-z])|password|passwd|passphrase|pwd|secret|token"
    r"|api[_-]?key|access[_-]?key|private[_-]?key)[A-Za-z0-9_-]*"
)
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # scheme://user:PASS@host (bounded, anchored: linear on long output without URIs)
    re.compile(
        r"(?P<pre>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^:/@\s]{0,256}:)"
        r"[^@\s/]{1,512}(?P<post>@)"
    ),
    # "password": "value" (JSON)
    re.compile(rf"(?P<pre>[\"']{_NAME}[\"']\s*:\s*[\"'])[^\"']*(?P<post>[\"'])", re.I),
    # password='quoted value' / PGPASSWORD="quoted"
    re.compile(
        rf"(?P<pre>(?<![A-Za-z0-9_-]){_NAME}\s*=\s*(?P<q>[\"']))[^\"']*(?P<post>(?P=q))", re.I
    ),
    # password=value, PGPASSWORD=value, ?access_token=value
    re.compile(rf"(?P<pre>(?<![A-Za-z0-9_-]){_NAME}\s*=\s*)(?![\"'*])[^\s,;&\"']+(?P<post>)", re.I),
    # ?key=value, &sign=value in URLs (robot webhooks carry their token there)
    re.compile(r"(?P<pre>[?&](?:key|sign|sig|signature)=)[^\s&#\"']+(?P<post>)", re.I),
    # Authorization: Bearer xyz / Proxy-Authorization: Basic xyz
    re.compile(
        r"(?P<pre>\b(?:Proxy-)?Authorization\s*[:=]\s*(?:(?:Bearer|Basic|Token|Digest)\s+)?)"
        r"[^\s,;\"']+(?P<post>)",
        re.I,
    ),
    # Cookie: a=b; c=d / X-Api-Key: xyz / X-Auth-Token: xyz (the rest of the header line)
    re.compile(
        r"(?P<pre>\b(?:Set-)?Cookie\s*:\s*|\bX-[A-Za-z-]*(?:Key|Token|Secret)\s*:\s*)"
        r"[^\r\n\"']+(?P<post>)",
        re.I,
    ),
)
_SECRET_OPTION = re.compile(
    r"^--?[A-Za-z0-9-]*(pass(word|wd)?|secret|token|api-?key|access-?key)[A-Za-z0-9-]*$",
    re.IGNORECASE,
)
_EMBEDDED = (
    re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://[^:/@\s]{0,256}:([^@\s/]{1,512})@"),
    re.compile(rf"(?<![A-Za-z0-9_-]){_NAME}\s*=\s*'((?:[^'\\]|\\.)*)'", re.I),
    re.compile(rf"(?<![A-Za-z0-9_-]){_NAME}\s*=\s*([^\s,;&\"']+)", re.I),
    re.compile(r"[?&](?:key|sign|sig|signature)=([^\s&#\"']+)", re.I),
)


def is_secret_name(name: str) -> bool:
    """Whether a value called `name` is a secret: `db_password`, `api_token`,
    `Authorization`: yes; `password_file` (where the secret is kept): no."""
    return bool(_SECRET_WORD.search(name)) and not name.lower().endswith(_PLACE_SUFFIXES)


def embedded_secrets(text: str) -> list[str]:
    """The passwords written inside `text`: a DSN's or URL's password, `password=...`,
    a query string's token."""
    found: list[str] = []
    for pattern in _EMBEDDED:
        found.extend(m.group(1) for m in pattern.finditer(text) if m.group(1))
    return found


class Redactor:
    """Replaces known secret values and every secret pattern of the rule with `***`.

    Thread-safe. Values shorter than 4 characters are not registered (they would
    mask ordinary words); patterns are masked whatever their length.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self.add_all(values)

    def add(self, value: str) -> None:
        """Mask `value` from now on (and its parts, for a value spanning lines)."""
        for v in (value, *value.splitlines()):
            v = v.strip()
            if len(v) >= _MIN_LEN:
                with self._lock:
                    self._values.add(v)

    def add_all(self, values: Iterable[str]) -> None:
        for v in values:
            self.add(v)

    def add_embedded(self, text: str) -> None:
        """Mask, from now on, every password written inside `text` (a DSN, a URL)."""
        self.add_all(embedded_secrets(text))

    def with_values(self, values: Iterable[str]) -> Redactor:
        """A redactor masking this one's values and `values` too."""
        with self._lock:
            mine = set(self._values)
        out = Redactor(mine)
        out.add_all(values)
        return out

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        """`text` with every known secret value and every secret pattern replaced by `***`."""
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for v in values:
            if v in text:
                text = text.replace(v, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_mask, text)
        return text

    def tree(self, value: Any) -> Any:
        """A JSON-like value with every string redacted and the value of every secret key
        (`password`, `Authorization`...) masked whole."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {
                k: (
                    MASK
                    if isinstance(k, str) and is_secret_name(k) and _has_content(v)
                    else self.tree(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.tree(v) for v in value)
        if isinstance(value, BaseException):
            return self.redact(str(value))
        return value


def _has_content(value: Any) -> bool:
    return isinstance(value, str | bytes | int | float) and not isinstance(value, bool)


def _mask(match: re.Match[str]) -> str:
    return f"{match.group('pre')}{MASK}{match.group('post')}"


REDACTOR = Redactor()
"""The process-wide redactor: every secret resolved or declared in this process."""


def redact(text: str) -> str:
    """Redact `text` with the process-wide redactor."""
    return REDACTOR.redact(text)


def redact_tree(value: Any) -> Any:
    """Redact a JSON-like value with the process-wide redactor (see `Redactor.tree`)."""
    return REDACTOR.tree(value)


def register(*values: str) -> None:
    """Mask these values from now on, everywhere in this process."""
    REDACTOR.add_all(values)


_REFERENCE_KEYS = frozenset({"password", "password_file", "access_key_id", "secret_access_key"})


def register_configured(settings: Any, base_dir: Path) -> None:
    """Mask every secret a configuration (as plain data) refers to: the values behind its
    references (unreadable ones are skipped: the command that needs one says why),
    S3 credentials files, and passwords written inside its DSNs and URLs."""
    for key, value in _settings(settings):
        REDACTOR.add_embedded(value)
        if key in _REFERENCE_KEYS:
            with contextlib.suppress(ConfigError):
                resolve_secret(value, base_dir)
        elif key == "credentials_file":
            with contextlib.suppress(ConfigError):
                register_ini_secrets(secret_path(value, base_dir, setting=key))


def register_ini_secrets(path: Path) -> None:
    """Mask the secret values of an INI file (an S3 credentials file)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return
    for section in parser.sections():
        REDACTOR.add_all(v for k, v in parser.items(section) if is_secret_name(k))


def _settings(node: Any, key: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield from _settings(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _settings(v, key)


def sanitize_args(args: Sequence[str]) -> list[str]:
    """Command-line arguments with secret values removed.

    `--password X` / `--password=X`, `--var token=X` / `--var=token=X` (secret names),
    DSN/URL passwords and registered secret values all become `***`.
    """
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append(MASK)
            hide_next = False
        elif arg.startswith("-") and "=" in arg:
            out.append(_option_with_value(arg))
        elif _SECRET_OPTION.match(arg):
            out.append(arg)
            hide_next = True
        else:
            key, sep, _value = arg.partition("=")
            secret = sep and not arg.startswith("-") and is_secret_name(key)
            out.append(f"{key}={MASK}" if secret else redact(arg))
    return out


def _option_with_value(arg: str) -> str:
    opt, _, value = arg.partition("=")
    if _SECRET_OPTION.match(opt):
        return f"{opt}={MASK}"
    name, sep, _value = value.partition("=")
    if sep and is_secret_name(name):  # `--var=api_key=X`
        return f"{opt}={name}={MASK}"
    return redact(arg)


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
    return _read_file(secret_path(ref, base_dir, setting=setting), setting, ref)


def secret_path(ref: str, base_dir: Path, *, setting: str) -> Path:
    """The file a `credential:NAME` reference or a path (relative to `base_dir`) names.

    `credential:NAME` is `$CREDENTIALS_DIRECTORY/NAME`, the copy systemd hands over for
    `LoadCredential=NAME:...`; ConfigError (exit 2) when the variable is unset or the
    file is absent, naming the setting and the unit line to add."""
    if ref.startswith("credential:"):
        name = ref[len("credential:") :]
        if not _CRED_NAME.match(name):
            raise ConfigError(f"{setting}: {ref!r} is not a valid credential name")
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if not cred_dir:
            raise ConfigError(
                f"{setting}: {ref} needs $CREDENTIALS_DIRECTORY, which systemd sets for a "
                f"unit with LoadCredential={name}:PATH; outside systemd use a file path"
            )
        path = Path(cred_dir) / name
        if not path.exists():
            raise ConfigError(
                f"{setting}: {ref}: no file {name} in $CREDENTIALS_DIRECTORY ({cred_dir}); "
                f"add LoadCredential={name}:PATH to the unit"
            )
        return path
    path = Path(ref).expanduser()
    return path if path.is_absolute() else base_dir / path


def refuse_world_readable(path: Path, what: str) -> None:
    """ConfigError (exit 2) naming `path` when every user of the host may read it.

    Group-readable is fine: `root:recoveryd 0640` is the documented mode."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # the read that follows names the problem
    if mode & stat.S_IROTH:
        raise ConfigError(
            f"{what} {path} is readable by every user (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod o-rwx {path}` (root:recoveryd 0640 is enough for the service)"
        )


def _read_file(path: Path, setting: str, ref: str) -> str:
    refuse_world_readable(path, f"{setting}: secret file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{setting}: secret file {ref} not found; create it or fix the path"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"{setting}: secret file {ref} is not readable by this user; give it to the "
            "service's group (root:recoveryd 0640) or hand it over with LoadCredential="
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{setting}: {ref} is a directory, not a secret file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: secret file {ref} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read secret file {ref}: {exc.strerror}") from None
    return text.removesuffix("\n").removesuffix("\r")
