"""YAML documents that remember where each value came from.

Configuration files and playbooks are loaded through here so that every error
can name the file, the line and the key path (`recoveryd.yaml:14:
sources.population.targets[1]: unknown target "ofsite"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from recoveryd.errors import ConfigError

PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def format_key_path(path: Sequence[str | int]) -> str:
    """`("sources", "population", "targets", 1)` -> `sources.population.targets[1]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


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
        """Validate the whole document into `model`; the first problem becomes a ConfigError."""
        try:
            return model.model_validate(self.data, context=context)
        except ValidationError as exc:
            raise self.from_validation_error(exc) from None

    def from_validation_error(self, exc: ValidationError, prefix: PathKey = ()) -> ConfigError:
        """Turn pydantic's report into one sentence naming line and key path."""
        first = exc.errors()[0]
        loc: list[str | int] = list(prefix)
        for part in first["loc"]:
            # pydantic adds the tag name of discriminated unions and function names to loc
            if isinstance(part, int) or part in _keys_at(self.data, loc):
                loc.append(part)
        return self.error(loc, _sentence(first))


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
    msg = str(err["msg"])
    for noise in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(noise)
    if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], dict):
        return f"{msg} (got {err['input']!r})"
    return msg


class _Loader(yaml.SafeLoader):
    """SafeLoader: no arbitrary objects; duplicate keys are refused when we walk the nodes."""


def load(path: Path | str, *, what: str = "file") -> Document:
    """Read and parse a YAML file; any problem is a ConfigError naming the file and line."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found; check the path", path=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", path=source) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text", path=source) from None
    return loads(text, source=source)


def loads(text: str, *, source: str = "<string>") -> Document:
    """Parse YAML text into a Document."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", path=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=source) from None
    if node is None:
        return Document(source, {}, {(): 1})
    lines: dict[PathKey, int] = {}
    data = _construct(node, (), lines, source)
    return Document(source, data, lines)


def _construct(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # a plain key is its text: YAML 1.1 would read `on:` (notify) as the boolean True
            key = (
                key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key_node.style is None
                else _Loader(" ").construct_object(key_node)
            )
            if not isinstance(key, str | int | float | bool):
                raise ConfigError(
                    "keys must be plain strings",
                    path=source,
                    line=key_node.start_mark.line + 1,
                    key=format_key_path(path),
                )
            skey = str(key)
            if skey in out:
                raise ConfigError(
                    "duplicate key; keep only one",
                    path=source,
                    line=key_node.start_mark.line + 1,
                    key=format_key_path((*path, skey)),
                )
            out[skey] = _construct(value_node, (*path, skey), lines, source)
            lines[(*path, skey)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, (*path, i), lines, source) for i, v in enumerate(node.value)]
    return _Loader(" ").construct_object(node)
