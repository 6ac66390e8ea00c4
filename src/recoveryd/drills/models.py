"""The playbook schema (docs/PLAYBOOKS.md) as frozen pydantic models.

A `Step` is one entry of `steps`, `preflight`, `steady_state`,
`stop_conditions` or a `rollback`: the model of its kind, one module each in
`drills/steps/` (see `steps/registry.py`). Which kinds are allowed where is
checked by the loader, which also resolves variables, includes and host names
before these models are built.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from recoveryd.config import Host
from recoveryd.configtypes import PositiveDuration, Text
from recoveryd.drills.steps.registry import Step
from recoveryd.drills.steps.schema import Model

__all__ = [
    "Approvals",
    "Canary",
    "LoadedPlaybook",
    "Objectives",
    "Owners",
    "Playbook",
    "Step",
]


class Owners(Model):
    government: str = ""
    vendor: str = ""


class Objectives(Model):
    rto: PositiveDuration | None = None
    rpo: PositiveDuration | None = None


class Approvals(Model):
    required: int = Field(default=0, ge=0, le=10)
    timeout: PositiveDuration = 3600.0


class Canary(Model):
    dsn: Text
    read_from: Text | None = None  # the new primary, where surviving rows are read after recovery
    every: PositiveDuration = 1.0
    table: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "recoveryd_canary"


RollbackOn = Literal["failure", "abort", "interrupt"]


def _all_rollback_on() -> list[RollbackOn]:
    return ["failure", "abort", "interrupt"]


class Playbook(Model):
    apiVersion: Literal["recoveryd/v1"]  # noqa: N815 - the key as written in YAML
    kind: Literal["Drill"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    description: str = ""
    owners: Owners = Field(default_factory=Owners)
    objectives: Objectives = Field(default_factory=Objectives)
    hosts: dict[str, Host] = Field(default_factory=dict)
    vars: dict[str, str | int | Annotated[float, Field(allow_inf_nan=False)] | bool] = Field(
        default_factory=dict
    )
    preflight: list[Step] = Field(default_factory=list)
    steady_state: list[Step] = Field(default_factory=list)
    stop_conditions: list[Step] = Field(default_factory=list)
    canary: Canary | None = None
    steps: list[Step] = Field(min_length=1)
    approvals: Approvals = Field(default_factory=Approvals)
    rollback_on: list[RollbackOn] = Field(default_factory=_all_rollback_on)
    include: list[str] = Field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """The configured sources the steps back up, restore or verify (for the report)."""
        return sorted({name for step in self.steps for name in step.sources()})

    def sections(self) -> dict[str, list[Step]]:
        """The lists of steps by section name, in the order a run meets them."""
        return {
            "preflight": self.preflight,
            "steady_state": self.steady_state,
            "stop_conditions": self.stop_conditions,
            "steps": self.steps,
        }


class LoadedPlaybook(Model):
    """A validated playbook with variables resolved, includes expanded and hosts merged."""

    playbook: Playbook
    path: str
    sha256: str
    hosts: dict[str, Host]
    vars: dict[str, str]
    base_dir: str
    secrets: list[str] = Field(default_factory=list)
    # allowed but risky (a destructive step's rollback without only_if): `drill validate`
    # prints them, `run_started` journals them
    warnings: list[str] = Field(default_factory=list)
