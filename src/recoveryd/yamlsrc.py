"""YAML documents that remember where each value came from.

Configuration files and playbooks are loaded through here so that every error
can name the file, the line and the key path (`recoveryd.yaml:14:
sources.population.targets[1]: unknown target "ofsite"`). Reading and
composing are bounded (`recoveryd.yamlbound`): regular files only, a size
limit, no tags, no NUL, limits on depth, aliases and values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from recoveryd.errors import ConfigError, problems_error
from recoveryd.yamlbound import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    PathKey,
    compose,
    decode,
    format_key_path,
    nul_line,
    read_bytes,
)

__all__ = ["Document", "PathKey", "format_key_path", "load", "loads", "parse_key_path"]
M = TypeVar("M", bound=BaseModel)


def parse_key_path(text: str) -> PathKey:
    """`sources.population.targets[1]` -> `("sources", "population", "targets", 1)`;
    `drills.0.schedule` reads as `drills[0].schedule`."""
    out: list[str | int] = []
    for part in text.split("."):
        name, *indexes = part.split("[")
        if name:
            out.append(int(name) if name.isdigit() else name)
        out.extend(int(i.rstrip("]")) for i in indexes if i.rstrip("]").isdigit())
    return tuple(out)


@dataclass(frozen=True)
class Document:
    """Plain data loaded from YAML plus the line of every key path (1-based)."""

    source: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    sha256: str = ""
    """Of the file's bytes, when the document was read from a file."""

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of the longest prefix of `path` that was in the file."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        """A ConfigError naming this document, the line and the key path."""
        return ConfigError(
            message, path=self.source, line=self.line_of(path), key=format_key_path(path)
        )

    def locate(self, exc: ConfigError) -> ConfigError:
        """`exc` with this document's name and line when it names only a key path."""
        if exc.path is not None or not exc.key:
            return exc
        return self.error(parse_key_path(exc.key), exc.detail)

    def validate(self, model: type[M], *, context: dict[str, Any] | None = None) -> M:
        """Validate the whole document into `model`; every problem is reported at once
        (a ConfigError with one line per problem, each naming line and key path)."""
        try:
            return model.model_validate(self.data, context=context)
        except ValidationError as exc:
            raise self.from_validation_error(exc) from None

    def from_validation_error(self, exc: ValidationError, prefix: PathKey = ()) -> ConfigError:
        """Turn pydantic's report into one sentence per problem naming line and key path."""
        problems: list[ConfigError] = []
        seen: set[str] = set()
        for err in exc.errors():
            problem = self._problem(err, prefix)
            if problem.message not in seen:
                seen.add(problem.message)
                problems.append(problem)
        return problems_error(problems)

    def _problem(self, err: Any, prefix: PathKey) -> ConfigError:
        loc: list[str | int] = list(prefix)
        for part in err["loc"]:
            # pydantic adds the tag name of discriminated unions and function names to loc
            if isinstance(part, int) or part in _keys_at(self.data, loc):
                loc.append(part)
        return self.error(loc, _sentence(err))


def _keys_at(data: Any, path: Sequence[str | int]) -> set[str]:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return set()
    return set(node.keys()) if isinstance(node, dict) else set()


def _sentence(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if kind == "missing":
        field_name = err["loc"][-1] if err["loc"] else "value"
        return f"missing {field_name!s}; set it"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return f"{err['input']!r} is not of the accepted form (regular expression {pattern})"
    msg = str(err["msg"])
    for noise in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(noise)
    if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict):
        return f"{msg} (got {err['input']!r})"
    return msg


def load(path: Path | str, *, what: str = "file") -> Document:
    """Read and parse a YAML file; any problem is a ConfigError naming the file and line."""
    source = str(path)
    raw = read_bytes(path, what=what)
    doc = loads(decode(raw, source=source, what=what), source=source)
    return replace(doc, sha256=hashlib.sha256(raw).hexdigest())


def loads(text: str, *, source: str = "<string>") -> Document:
    """Parse YAML text into a Document (within the limits of `recoveryd.yamlbound`)."""
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"larger than {MAX_BYTES // 1024} KiB; keep it to a few kilobytes", path=source
        )
    line = nul_line(text)
    if line is not None:
        raise _nul_error(text, source, line)
    node = compose(text, source=source)
    if node is None:
        return Document(source, {}, {(): 1})
    builder = _Builder(source)
    data = builder.build(node, ())
    return Document(source, data, builder.lines)


def _nul_error(text: str, source: str, line: int) -> ConfigError:
    """A NUL character, blamed on the key written on its line when one can be found."""
    key: PathKey = ()
    try:
        located = loads(text.replace("\0", " "), source=source)
    except ConfigError:
        located = None
    if located is not None:
        on_line = [p for p, n in located.lines.items() if n == line]
        key = max(on_line, key=len, default=())
    return ConfigError(
        "contains a NUL character; remove it", path=source, line=line, key=format_key_path(key)
    )


class _Builder:
    """Nodes -> plain data, counting values (aliases where they are used) and depth."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[PathKey, int] = {}
        self.count = 0
        self.scalars = yaml.SafeLoader("")

    def _error(self, node: yaml.Node, path: PathKey, message: str) -> ConfigError:
        return ConfigError(
            message, path=self.source, line=node.start_mark.line + 1, key=format_key_path(path)
        )

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._error(
                node, path, f"more than {MAX_NODES} values (aliases expanded); simplify the file"
            )
        if len(path) > MAX_DEPTH:
            raise self._error(
                node, path, f"nested deeper than {MAX_DEPTH} levels (through aliases)"
            )
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, (*path, i)) for i, v in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(key_node, path, "keys must be plain strings")
            # a plain key is its text: YAML 1.1 would read `on:` (notify) as the boolean True;
            # libyaml's parser gives plain scalars the style "", PyYAML's None
            plain = not key_node.style
            key = key_node.value if plain else self._scalar(key_node, path)
            if not isinstance(key, str | int | float | bool):
                raise self._error(key_node, path, "keys must be plain strings")
            skey = str(key)
            if skey in out:
                raise self._error(key_node, (*path, skey), "duplicate key; keep only one")
            out[skey] = self.build(value_node, (*path, skey))
            self.lines[(*path, skey)] = key_node.start_mark.line + 1
        return out

    def _scalar(self, node: yaml.Node, path: PathKey) -> Any:
        try:
            value = self.scalars.construct_object(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            raise self._error(
                node, path, f"{_clip(node.value)} cannot be read ({_clip(str(exc))})"
            ) from None
        if isinstance(value, str) and "\0" in value:
            raise self._error(node, path, "contains a NUL character; remove it")
        return value


def _clip(text: Any, limit: int = 60) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."
