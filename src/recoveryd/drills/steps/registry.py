"""The step kinds, and `Step`: the model of one step, selected by its kind key.

A step is written with exactly one kind key (`run`, `sql`, `http`, `wait`,
`sleep`, `backup`, `restore`, `verify`, `fault`, `approve`, `include`,
`pressure`); that key is the discriminator choosing the kind's model. A new
kind is one module (model, validate, run, describe as its `KIND`) and one line
in `_KINDS` and `Step` below.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, Tag

from recoveryd.drills.steps import (
    approve,
    backup,
    command,
    fault,
    http,
    include,
    pressure,
    restore,
    sleep,
    sql,
    verify,
    wait,
)
from recoveryd.drills.steps.schema import StepBase, StepKind

_KINDS: tuple[StepKind[Any], ...] = (
    command.KIND,
    sql.KIND,
    http.KIND,
    wait.KIND,
    sleep.KIND,
    backup.KIND,
    restore.KIND,
    verify.KIND,
    fault.KIND,
    approve.KIND,
    include.KIND,
    pressure.KIND,
)
KINDS: dict[str, StepKind[Any]] = {kind.name: kind for kind in _KINDS}
PROBE_KINDS = frozenset(kind.name for kind in _KINDS if kind.probe)
STEP_KEYS = frozenset(key for kind in _KINDS for key in kind.model.model_fields)
"""Every key a step may have, whatever its kind."""


def _tag(kind: str) -> str:
    # not a key of the step itself, so error locations name the step's own keys only
    return f"{kind} step"


def _kinds_in(value: dict[str, Any]) -> list[str]:
    return [k for k in KINDS if value.get(k) is not None]


def _one_kind(value: Any) -> Any:
    """Exactly one kind key; a kind key written as null counts as absent."""
    if not isinstance(value, dict):
        return value
    present = _kinds_in(value)
    if not present:
        raise ValueError(f"step has no kind; give one of: {', '.join(KINDS)}")
    if len(present) > 1:
        raise ValueError(f"step has several kinds ({', '.join(present)}); keep one")
    return {k: v for k, v in value.items() if k not in KINDS or v is not None}


def _kind_of(value: Any) -> str | None:
    if isinstance(value, StepBase):
        return _tag(value.kind)
    if isinstance(value, dict):
        present = _kinds_in(value)
        return _tag(present[0]) if len(present) == 1 else None
    return None


Step = Annotated[
    Annotated[
        Annotated[command.RunStep, Tag(_tag("run"))]
        | Annotated[sql.SqlStep, Tag(_tag("sql"))]
        | Annotated[http.HttpStep, Tag(_tag("http"))]
        | Annotated[wait.WaitStep, Tag(_tag("wait"))]
        | Annotated[sleep.SleepStep, Tag(_tag("sleep"))]
        | Annotated[backup.BackupStep, Tag(_tag("backup"))]
        | Annotated[restore.RestoreStep, Tag(_tag("restore"))]
        | Annotated[verify.VerifyStep, Tag(_tag("verify"))]
        | Annotated[fault.FaultStep, Tag(_tag("fault"))]
        | Annotated[approve.ApproveStep, Tag(_tag("approve"))]
        | Annotated[include.IncludeStep, Tag(_tag("include"))]
        | Annotated[pressure.PressureStep, Tag(_tag("pressure"))],
        Discriminator(_kind_of),
    ],
    BeforeValidator(_one_kind),
]
"""One step of a playbook (or a rollback): the model of its kind."""

_MODELS: tuple[type[StepBase], ...] = (StepBase, *(kind.model for kind in _KINDS))
for _model in _MODELS:  # `rollback: Step` refers to the union defined here
    _model.model_rebuild(_types_namespace={"Step": Step})
