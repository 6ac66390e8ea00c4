"""Every key of the configuration file and of playbooks, walked from the pydantic models.

A key path reads like the file: `sources.NAME.retention.keep_last`,
`steps[].wait.http.url`. A model used in several places is listed once, at its first
path (a `Thresholds` under `governor.signals.load`, then by reference).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """The models an annotation holds, with the path suffix that leads into them."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _models_in(args[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _models_in(arg)
    elif origin is dict:
        for model, suffix in _models_in(args[1]):
            yield model, ".NAME" + suffix
    elif origin is list:
        for model, suffix in _models_in(args[0]):
            yield model, "[]" + suffix
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, ""


def keys(
    model: type[BaseModel],
    prefix: str = "",
    seen: set[type[BaseModel]] | None = None,
    first: tuple[str, ...] = ("steps",),
) -> Iterator[tuple[str, FieldInfo]]:
    """(key path, field) of every field reachable from `model`; the fields named in `first`
    are walked first (a step's keys are listed under `steps[]`, not `preflight[]`)."""
    seen = seen if seen is not None else {model}
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] not in first)
    for name, info in fields:
        path = f"{prefix}.{name}" if prefix else name
        yield path, info
        # the members of a union (the step kinds under `steps[]`) are all marked seen before
        # any is walked, so a rollback (any step kind) is listed once, as `steps[].rollback`
        subs = [(sub, suffix) for sub, suffix in _models_in(info.annotation) if sub not in seen]
        seen.update(sub for sub, _ in subs)
        for sub, suffix in subs:
            yield from keys(sub, path + suffix, seen, first)


def key_paths(model: type[BaseModel]) -> list[str]:
    return list(dict.fromkeys(path for path, _ in keys(model)))
