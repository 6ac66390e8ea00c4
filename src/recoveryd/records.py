"""What the typed record files share (the drill journal, the incident records): the base
model, the JSON form of a record's values, and tolerant reading.

Reading is tolerant so that one odd line never hides the rest of a file: a field of the
wrong type is dropped (its default is used) and a record of an unknown type is None. The
hash chain verifies the bytes as written, independently of these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from recoveryd.state import iso

T = TypeVar("T")


class RecordModel(BaseModel):
    """Frozen; fields a newer version wrote are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def jsonable(value: Any) -> Any:
    """`value` as a record file holds it: times in ISO 8601 UTC with milliseconds and `Z`,
    dates as YYYY-MM-DD, containers element by element."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def parse_tolerant(adapter: TypeAdapter[T], raw: Mapping[str, Any]) -> T | None:
    """The typed record of one line; fields of the wrong type are dropped, None for a record
    of an unknown type (or one that is wrong in its `type` alone)."""
    data = dict(raw)
    while True:
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            bad = {e["loc"][1] for e in exc.errors() if len(e["loc"]) > 1}
            bad.discard("type")
            if not bad or not bad & set(data):
                return None
            for key in bad:
                data.pop(str(key), None)
