"""The playbook schema of SPEC §4 as frozen pydantic models.

A `Step` is one entry of `steps`, `preflight`, `steady_state`,
`stop_conditions`, a `rollback` or a `wait` probe. Exactly one *kind* key says
what it does (`run`, `sql`, `http`, `wait`, `sleep`, `backup`, `restore`,
`verify`, `fault`, `approve`, `include`, `pressure`); the other keys modify it.
Which kinds are allowed where is checked by the loader, which also resolves
variables, includes and host names before these models are built.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from recoveryd.config import Check, Duration, Host

KINDS = (
    "run",
    "sql",
    "http",
    "wait",
    "sleep",
    "backup",
    "restore",
    "verify",
    "fault",
    "approve",
    "include",
    "pressure",
)
PROBE_KINDS = frozenset({"run", "sql", "http", "pressure"})
Expectation = str | int | float | bool | dict[str, Any] | None


def _argv(value: Any) -> Any:
    """Numbers in a command list are arguments too (`[sleep, 5]`); booleans stay an error."""
    if isinstance(value, list):
        return [
            str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value
        ]
    return value


Command = Annotated[list[str] | str, BeforeValidator(_argv)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Owners(Model):
    government: str = ""
    vendor: str = ""


class Objectives(Model):
    rto: Duration | None = None
    rpo: Duration | None = None


class HttpRequest(Model):
    url: Annotated[str, Field(pattern=r"^https?://")]
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    timeout: Duration = 10.0


class BackupOp(Model):
    sources: list[str] = Field(default_factory=list)


class RestoreOp(Model):
    source: str | None = None
    snapshot: str = "latest"
    into: str
    target: str | None = None
    checks: list[Check] = Field(default_factory=list)
    drop_after: bool = False  # drop the scratch database when the drill ends
    password_file: str | None = None  # password of the scratch database


class VerifyOp(Model):
    snapshots: list[str] = Field(default_factory=list)
    source: str | None = None
    read_data: bool = False
    target: str | None = None


class Fault(Model):
    """A built-in fault with its automatic undo.

    - `stop_process`: SIGSTOP (frozen, undo: SIGCONT);
    - `kill_process`: `signal` (default TERM; undo: run `restart` if given);
    - `block_port`: a listening squatter on a free port (undo: close it);
    - `fill_disk`: a file filling the filesystem of `path` to `level` percent (undo: delete).
    """

    action: Literal["stop_process", "kill_process", "block_port", "fill_disk"]
    pid_file: str | None = None
    process: str | None = None  # exact process name (comm), when no pid_file
    signal: Literal["TERM", "KILL", "INT", "HUP", "QUIT"] = "TERM"
    restart: Annotated[list[str], BeforeValidator(_argv)] | None = None
    ssh: str | None = None  # where `restart` runs; local when absent
    port: int | None = Field(default=None, ge=1, le=65535)
    address: str = "127.0.0.1"
    path: str | None = None
    level: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _needs(self) -> Fault:
        if self.action in ("stop_process", "kill_process") and not (self.pid_file or self.process):
            raise ValueError(f"{self.action} needs pid_file or process")
        if self.action == "block_port" and self.port is None:
            raise ValueError("block_port needs port")
        if self.action == "fill_disk" and (self.path is None or self.level is None):
            raise ValueError("fill_disk needs path (a directory) and level (percent)")
        return self


class Probe(Model):
    """What a `wait` step polls: any probe kind with its `expect`."""

    run: Command | None = None
    ssh: str | None = None
    shell: bool = False
    sql: str | None = None
    on: str | None = None
    engine: Literal["postgresql", "mysql", "sqlite"] | None = None
    password_file: str | None = None
    http: HttpRequest | None = None
    pressure: Literal["below critical", "below elevated"] | None = None
    expect: Expectation = None

    @model_validator(mode="after")
    def _explicit_shell(self) -> Probe:
        if isinstance(self.run, str) and not self.shell:
            raise ValueError(
                "run is a string; give an argument list, or write shell: true to use a shell"
            )
        return self


class Approvals(Model):
    required: int = Field(default=0, ge=0, le=10)
    timeout: Duration = 3600.0


class Canary(Model):
    dsn: str
    read_from: str | None = None  # the new primary, where surviving rows are read after recovery
    every: Duration = 1.0
    table: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "recoveryd_canary"


class Step(Model):
    name: str = Field(min_length=1)
    # kinds
    run: Command | None = None
    sql: str | None = None
    http: HttpRequest | None = None
    wait: Probe | None = None
    sleep: Duration | None = None
    backup: BackupOp | None = None
    restore: RestoreOp | None = None
    verify: VerifyOp | None = None
    fault: Fault | None = None
    approve: str | None = None
    include: str | None = None
    pressure: Literal["below critical", "below elevated"] | None = None
    # modifiers
    ssh: str | None = None
    shell: bool = False
    on: str | None = None
    engine: Literal["postgresql", "mysql", "sqlite"] | None = None
    password_file: str | None = (
        None  # password of the `sql` DSN (a file, env:NAME, credential:NAME)
    )
    expect: Expectation = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    interval: Duration = 1.0
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

    @property
    def kind(self) -> str:
        for k in KINDS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated steps have a kind")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        present = [k for k in KINDS if getattr(self, k) is not None]
        if not present:
            raise ValueError(f"step has no kind; give one of: {', '.join(KINDS)}")
        if len(present) > 1:
            raise ValueError(f"step has several kinds ({', '.join(present)}); keep one")
        kind = present[0]
        if isinstance(self.run, str) and not self.shell:
            raise ValueError(
                "run is a string; give an argument list, or write shell: true to use a shell"
            )
        if self.ssh is not None and kind != "run":
            raise ValueError("ssh goes with run only")
        if kind == "sql" and not self.on:
            raise ValueError("sql needs on: the DSN or database path to query")
        return self

    @property
    def is_destructive(self) -> bool:
        return self.destructive or self.fault is not None

    @property
    def defers_abort(self) -> bool:
        """An abort arriving while this step runs waits until the step has ended."""
        return self.is_destructive and not self.interruptible


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
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
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
        names: set[str] = set()
        for step in self.steps:
            if step.backup is not None:
                names.update(step.backup.sources)
            for op in (step.restore, step.verify):
                if op is not None and op.source:
                    names.add(op.source)
        return sorted(names)


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
