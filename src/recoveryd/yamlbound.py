"""Reading YAML from files an attacker or bad luck may have written, in bounded time and memory.

Every YAML file the product reads (the configuration, playbooks and the
playbooks they include) comes through `read_text` and `compose`:

- only a regular file is read (a FIFO, a device such as `/dev/zero` or a
  directory is refused before a byte is read), and at most `MAX_BYTES` of it;
- the text must be UTF-8 without NUL characters;
- composing refuses YAML tags (`!include`, `!!binary`, `!!python/...`),
  nesting deeper than `MAX_DEPTH` and more than `MAX_ALIASES` aliases; aliases
  are never expanded here (PyYAML's composer shares the node), and the walk
  that turns nodes into data (`yamlsrc`) stops after `MAX_NODES` values, so an
  alias bomb fails in milliseconds instead of filling memory.

Each refusal is a `ConfigError` naming the file, the line and the key path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from recoveryd.errors import ConfigError


class _PyParser(Reader, Scanner, Parser):
    """PyYAML's pure-Python event parser, for installations without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


def _event_parser() -> type:
    """libyaml's event parser (~5x faster than the pure-Python one) when PyYAML has it; the
    composer above it stays ours either way."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml
        return _PyParser
    return CParser


_Parser: type = _event_parser()

MAX_BYTES = 256 * 1024
"""Largest YAML file read: configurations and playbooks are a few kilobytes."""
MAX_DEPTH = 48
"""Deepest nesting of mappings and lists (the deepest real key path has about 8 levels)."""
MAX_ALIASES = 256
"""Most aliases (`*name`) in one document."""
MAX_NODES = 50_000
"""Most values (scalars, lists and mappings, aliases counted where they are used)."""

PathKey = tuple[str | int, ...]


def format_key_path(path: Sequence[str | int]) -> str:
    """`("sources", "population", "targets", 1)` -> `sources.population.targets[1]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: Path | str, *, what: str = "file", limit: int = MAX_BYTES) -> bytes:
    """The content of a regular file of at most `limit` bytes; ConfigError otherwise."""
    source = str(path)
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{what} not found; check the path", path=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", path=source) from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{what} is {_kind_of(mode)}; give the path of a YAML file", path=source)
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open does not hang
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", path=source) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(
                f"{what} is {_kind_of(st.st_mode)}; give the path of a YAML file", path=source
            )
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", path=source) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(
            f"{what} is larger than {limit // 1024} KiB; a {what} is a few kilobytes of YAML",
            path=source,
        )
    return data


def _read_at_most(fd: int, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left > 0:
        chunk = os.read(fd, min(left, 65536))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def decode(data: bytes, *, source: str, what: str = "file") -> str:
    """UTF-8 text without NUL characters (ConfigError naming the line otherwise)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{what} is not UTF-8 text; save it as UTF-8", path=source, line=line
        ) from None
    return text.removeprefix("\ufeff")


def nul_line(text: str) -> int | None:
    """The line of the first NUL character, if any."""
    at = text.find("\0")
    return None if at < 0 else text.count("\n", 0, at) + 1


class BoundedLoader(Composer, _Parser, Resolver):  # type: ignore[misc]
    """PyYAML's composer with limits: no tags, bounded depth, aliases and nodes.

    Knows the key path of the node being composed, so its errors name it.
    """

    def __init__(self, stream: str, source: str) -> None:
        _Parser.__init__(self, stream)  # type: ignore[misc]
        Composer.__init__(self)
        Resolver.__init__(self)
        self.source = source
        self.path: list[str | int] = []
        """Key path of the node being composed."""
        self.error_path: list[str | int] | None = None
        """Key path where a syntax error was found (the deepest node that saw it)."""
        self._aliases = 0
        self._depth = 0
        self._nodes = 0

    def _refuse(self, message: str, event: Any) -> ConfigError:
        return ConfigError(
            message,
            path=self.source,
            line=event.start_mark.line + 1,
            key=format_key_path(self.path),
        )

    def compose_node(self, parent: Any, index: Any) -> Any:
        pushed = _path_part(index)
        if pushed is not None:
            self.path.append(pushed)
        self._depth += 1
        self._nodes += 1
        try:
            event = self.peek_event()
            if self._nodes > MAX_NODES:
                raise self._refuse(f"more than {MAX_NODES} values; simplify the file", event)
            if isinstance(event, yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise self._refuse(
                        f"more than {MAX_ALIASES} aliases (*name); write the values out", event
                    )
            elif isinstance(event, yaml.NodeEvent) and _tag_of(event) is not None:
                raise self._refuse(
                    f"YAML tags ({_short_tag(_tag_of(event))}) are not accepted; write the value",
                    event,
                )
            if self._depth > MAX_DEPTH:
                raise self._refuse(f"nested deeper than {MAX_DEPTH} levels; flatten it", event)
            return super().compose_node(parent, index)
        except yaml.YAMLError:
            if self.error_path is None:
                self.error_path = list(self.path)
            raise
        finally:
            self._depth -= 1
            if pushed is not None:
                self.path.pop()


def _path_part(index: Any) -> str | int | None:
    """The key path element of a node: its list index, or the text of its mapping key."""
    if isinstance(index, int) and not isinstance(index, bool):
        return index
    if isinstance(index, yaml.ScalarNode):
        return str(index.value)
    if isinstance(index, yaml.Node):
        return "?"
    return None


def compose(text: str, *, source: str) -> yaml.Node | None:
    """The node tree of one YAML document, within the limits (ConfigError otherwise)."""
    loader: BoundedLoader | None = None
    try:
        loader = BoundedLoader(text, source)
        node: yaml.Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        if "nesting depth" in problem:
            problem = f"{problem}; flatten it"
        key = format_key_path(loader.error_path or []) if loader is not None else ""
        raise ConfigError(f"invalid YAML: {problem}", path=source, line=line, key=key) from None
    except ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise ConfigError(
            f"invalid YAML: control character {exc.character:#04x} is not allowed; remove it",
            path=source,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {_one_line(str(exc))}", path=source) from None
    finally:
        if loader is not None:
            loader.dispose()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short_tag(tag: str | None) -> str:
    """`tag:yaml.org,2002:binary` as written: `!!binary`."""
    tag = tag or "!"
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


def _tag_of(event: yaml.NodeEvent) -> str | None:
    tag: str | None = getattr(event, "tag", None)  # scalar and collection start events
    return tag
