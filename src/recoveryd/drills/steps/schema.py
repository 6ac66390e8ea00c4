"""What every step kind shares: the common keys of a step and the shape of a kind.

A step kind is one module of this package holding its model (a `StepBase`
subclass with the kind's own key), `validate` (checks beyond the schema, against
the configuration), `run` and `describe`, and exporting them as `KIND`, a
`StepKind`. `registry.py` lists the kinds; the key a step is written with (`run`,
`sql`, `backup`...) is the discriminator that selects its model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from recoveryd.config import LoadedConfig
from recoveryd.configtypes import Duration, PositiveDuration, Text

if TYPE_CHECKING:
    from recoveryd.drills.steps.base import Outcome, StepContext
    from recoveryd.drills.steps.http import HttpRequest
    from recoveryd.drills.steps.registry import Step

Expectation = str | int | float | bool | dict[str, Any] | None
KeyPath = tuple[str, ...]
Problem = tuple[KeyPath, str]
"""A problem `validate` found: the key path inside the step and one sentence."""


def _argv(value: Any) -> Any:
    """Numbers in a command list are arguments too (`[sleep, 5]`); booleans stay an error."""
    if isinstance(value, list):
        return [
            str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value
        ]
    return value


Command = Annotated[
    list[Text] | Text,
    BeforeValidator(_argv),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1},
                {"type": "string"},
            ],
            "description": "an argument list, or one shell line with shell: true",
        }
    ),
]
Argv = Annotated[list[str], BeforeValidator(_argv)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepBase(Model):
    """The keys every step may carry besides its kind key (the modifiers)."""

    kind: ClassVar[str] = ""  # the kind key, set by each kind's model

    name: str = Field(min_length=1)
    ssh: str | None = None
    shell: bool = False
    on: str | None = None
    engine: Literal["postgresql", "mysql", "sqlite"] | None = None
    password_file: str | None = (
        None  # password of the `sql` DSN (a file, env:NAME, credential:NAME)
    )
    expect: Expectation = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveDuration | None = None
    interval: PositiveDuration = 1.0
    retries: int = Field(default=0, ge=0, le=100)
    delay: Duration = 0.0
    rollback: Step | None = None
    # a probe evaluated just before the step (or rollback) would run; when it does not hold,
    # the step is skipped
    only_if: Step | None = None
    when: str | bool | None = None
    marks: Literal["fault_start", "fault", "recovered"] | None = None
    destructive: bool = False
    # an abort (stop condition, signal) stops this destructive step at once instead of
    # waiting for it to end
    interruptible: bool = False
    # the step's output holds a count (its first whole number), kept in the run's result
    # under this name (e.g. `requests_shed`, which the governor adds to its event)
    measure: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] | None = None
    approvals: int = Field(default=1, ge=1, le=10)
    vars: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ssh_with_run(self) -> StepBase:
        if self.ssh is not None and self.kind != "run":
            raise ValueError("ssh goes with run only")
        return self

    @property
    def is_destructive(self) -> bool:
        return self.destructive

    @property
    def defers_abort(self) -> bool:
        """An abort arriving while this step runs waits until the step has ended."""
        return self.is_destructive and not self.interruptible

    def sources(self) -> list[str]:
        """Configured sources the step works on (backup, restore, verify)."""
        return []

    def host_refs(self) -> list[tuple[str, KeyPath]]:
        """SSH hosts the step reaches, with the key naming each."""
        return [(self.ssh, ("ssh",))] if self.ssh else []

    def expectations(self) -> list[tuple[Expectation, KeyPath]]:
        """The `expect` values of the step, with their keys (checked by the loader)."""
        return [(self.expect, ("expect",))]

    def http_requests(self) -> list[HttpRequest]:
        """HTTP requests the step makes (their secret headers are masked)."""
        return []


S = TypeVar("S", bound=StepBase)


def no_problems(step: Any, cfg: LoadedConfig | None) -> list[Problem]:
    """`validate` of a kind the schema checks completely."""
    del step, cfg
    return []


@dataclass(frozen=True)
class StepKind(Generic[S]):
    """One step kind: its model and what it does.

    - `run(step, ctx, timeout)`: one attempt (no retries, no journal); `timeout` None
      means the kind's default;
    - `describe(step)`: what it would do, for `--dry-run` and the journal;
    - `validate(step, cfg)`: problems the schema cannot see (e.g. unknown sources);
    - `probe`: read-only, allowed in preflight, steady_state and stop_conditions;
      `step`: allowed in `steps`; `rollback`: allowed as a rollback.
    """

    model: type[S]
    run: Callable[[S, StepContext, float | None], Outcome]
    describe: Callable[[S], str]
    validate: Callable[[S, LoadedConfig | None], Sequence[Problem]] = no_problems
    probe: bool = False
    step: bool = True
    rollback: bool = True

    @property
    def name(self) -> str:
        return self.model.kind
