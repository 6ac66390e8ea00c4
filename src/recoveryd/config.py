"""The configuration file: YAML -> validated, frozen models.

Every model forbids unknown keys; every value with a meaning is checked for
it (`recoveryd.configtypes`). Errors name the file, the line and the key
path, all of them at once. Secrets are never values here, only references (`*_file`, `env:NAME`,
`credential:NAME` for systemd's `$CREDENTIALS_DIRECTORY`); see `secrets.py`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from recoveryd import yamlsrc
from recoveryd.configtypes import (
    Duration,
    Email,
    HostName,
    HttpUrl,
    ListenAddress,
    Number,
    Percent,
    PositiveDuration,
    PositiveSize,
    ServerAddress,
    Text,
    TimeZone,
)
from recoveryd.errors import ConfigError, problems_error
from recoveryd.fleetconfig import Fleet, SiteLabel
from recoveryd.secrets import register_configured
from recoveryd.targetconfig import FilesystemTarget as FilesystemTarget  # re-exported
from recoveryd.targetconfig import ObjectLock as ObjectLock  # re-exported
from recoveryd.targetconfig import S3Target as S3Target  # re-exported
from recoveryd.targetconfig import Target

DEFAULT_CONFIG_PATH = "/etc/recoveryd/recoveryd.yaml"
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Priority = Literal["critical", "normal", "low"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class Model(BaseModel):
    """Base: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Encryption(Model):
    key_file: Text
    cipher: Literal["aes-256-gcm", "sm4-gcm"] = "aes-256-gcm"


class Retention(Model):
    """Which snapshots prune keeps. Every policy keeps at least one snapshot: `keep_last: 0`
    and a policy whose every rule is zero are refused (they would erase the source)."""

    keep_last: Count | None = None
    hourly: Count | None = None
    daily: Count | None = None
    weekly: Count | None = None
    monthly: Count | None = None
    yearly: Count | None = None
    within: PositiveDuration | None = None

    @field_validator("keep_last")
    @classmethod
    def _keeps_one(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError(
                "0 keeps no snapshot, so prune would delete every snapshot of the source; "
                "set keep_last to 1 or more, or remove it"
            )
        return value

    @model_validator(mode="after")
    def _not_all_zero(self) -> Retention:
        rules = (self.hourly, self.daily, self.weekly, self.monthly, self.yearly, self.within)
        given = [v for v in (self.keep_last, *rules) if v is not None]
        if given and not any(given):
            raise ValueError(
                "every rule of this retention is zero, so prune would delete every snapshot "
                "of the source; keep at least one (e.g. keep_last: 1) or remove retention"
            )
        return self


class VerifySchedule(Model):
    schedule: Text
    read_data: bool | Literal["sample"] = False


class Check(Model):
    sql: Text
    expect: str | int | Annotated[float, Field(allow_inf_nan=False)] | bool


class RestoreDrill(Model):
    schedule: Text | None = None
    into: Text
    password_file: Text | None = None
    checks: list[Check] = Field(default_factory=list)
    rto: PositiveDuration | None = None


class _SourceBase(Model):
    schedule: Text | None = None
    rpo: PositiveDuration | None = None
    priority: Priority = "normal"
    # a label in any language (内部, confidential), one line
    classification: Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,63}$")] = "internal"
    targets: list[str] = Field(min_length=1)
    # how many targets must commit a snapshot for the run to count as a backup
    min_targets: int = Field(default=1, ge=1)
    retention: Retention | None = None
    verify: VerifySchedule | None = None
    restore_drill: RestoreDrill | None = None
    via_ssh: str | None = None
    site: SiteLabel | None = None  # fleet mode: members whose `serves` names it back it up
    # how the snapshot's chunks are compressed: zstd (smaller) or lz4 (less CPU); the one
    # home of the algorithms is repo/chunker.py. WAL and binary logs keep zstd.
    compression: Literal["zstd", "lz4"] = "zstd"


class WalSettings(Model):
    stream: bool = False  # the daemon streams WAL with pg_receivewal (`recoveryd wal-stream`)


class BinlogSettings(Model):
    stream: bool = False  # the daemon streams binary logs (`recoveryd binlog-stream`)


class PostgresSource(_SourceBase):
    kind: Literal["postgresql"]
    dsn: Text
    mode: Literal["logical", "physical"] = "logical"  # pg_dump, or pg_basebackup (PITR base)
    wal: WalSettings = Field(default_factory=WalSettings)
    password_file: Text | None = None
    password: str | None = None  # a reference only: env:NAME or credential:NAME
    lock_wait_timeout: Duration = Field(default=300.0, gt=0)  # pg_dump gives up on a locked table
    # dump/restore processes (parts); None: the cores, at most 4; 1: one pg_dump stream
    jobs: int | None = Field(default=None, ge=1, le=32)


class MysqlSource(_SourceBase):
    kind: Literal["mysql"]
    dsn: Text
    password_file: Text | None = None
    password: str | None = None  # a reference only: env:NAME or credential:NAME
    binlog: BinlogSettings = Field(default_factory=BinlogSettings)


class SqliteSource(_SourceBase):
    kind: Literal["sqlite"]
    path: Text


class DirectorySource(_SourceBase):
    kind: Literal["directory"]
    path: Text
    exclude: list[Text] = Field(default_factory=list)


Source = Annotated[
    PostgresSource | MysqlSource | SqliteSource | DirectorySource, Field(discriminator="kind")
]


class Host(Model):
    address: HostName
    port: int = Field(default=22, ge=1, le=65535)
    user: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")]
    key_file: Text
    known_hosts: Text
    connect_timeout: PositiveDuration = 10.0
    keepalive: Duration = 15.0


class Thresholds(Model):
    """Enter `elevated` at or above the first value, `critical` at or above the second:
    critical must be above elevated."""

    elevated: Number
    critical: Number
    # a level is left only below exit_ratio x its threshold (hysteresis in value)
    exit_ratio: float = Field(default=0.9, gt=0, le=1)

    @field_validator("critical")
    @classmethod
    def _critical_above_elevated(cls, value: float, info: ValidationInfo) -> float:
        elevated = info.data.get("elevated")
        if elevated is not None and value <= elevated:
            raise ValueError(
                f"critical ({value:g}) must be above elevated ({elevated:g}); swap them"
            )
        return value


class PercentThresholds(Thresholds):
    """Thresholds of a signal measured in percent (0 to 100)."""

    elevated: Percent
    critical: Percent


class HttpProbe(Model):
    url: HttpUrl
    timeout: PositiveDuration = 2.0
    window: PositiveDuration = 10.0


class ServiceLatency(Model):
    http: HttpProbe
    p95_ms: Thresholds


class DbConnections(Model):
    source: str
    active: Thresholds


class CommandProbe(Model):
    """A generic probe: a command (argument list) that prints numbers; `field` picks one
    (0-based). With `counter`, the number is an ever-growing count (e.g. nginx
    stub_status requests) and the reading is its rate per second."""

    run: list[Text] = Field(min_length=1)
    timeout: PositiveDuration = 5.0
    field: int = Field(default=0, ge=0, le=1000)
    counter: bool = False
    value: Thresholds


class Signals(Model):
    cpu: PercentThresholds | None = None
    memory: PercentThresholds | None = None
    load: Thresholds | None = None
    io_pressure: PercentThresholds | None = None
    cpu_pressure: PercentThresholds | None = None
    memory_pressure: PercentThresholds | None = None
    service_latency: ServiceLatency | None = None
    db_connections: DbConnections | None = None
    command: CommandProbe | None = None


class Hold(Model):
    enter: Duration = 3.0
    exit: Duration = 30.0


class LevelActions(Model):
    elevated: list[str] = Field(default_factory=list)
    critical: list[str] = Field(default_factory=list)


class Governor(Model):
    interval: PositiveDuration = 1.0
    signals: Signals = Field(default_factory=Signals)
    hold: Hold = Field(default_factory=Hold)
    on_enter: LevelActions = Field(default_factory=LevelActions)
    on_exit: LevelActions = Field(default_factory=LevelActions)
    max_pause: PositiveDuration = 600.0  # a paused dump holding a transaction is abandoned then
    throttled_bandwidth: PositiveSize = 32 * 1024 * 1024  # bytes/s ceiling of throttled uploads


class DrillSchedule(Model):
    playbook: Text
    schedule: Text
    vars: dict[str, str] = Field(default_factory=dict)


NotifyEvent = Literal[
    "failure", "overdue", "recovery", "shed", "rpo_override", "drill", "under_replicated"
]


def _default_events() -> list[NotifyEvent]:
    return ["failure", "overdue", "recovery", "under_replicated"]


class WebhookNotify(Model):
    kind: Literal["webhook"]
    url: HttpUrl
    format: Literal["json", "wecom", "dingtalk", "feishu"] = "json"
    on: list[NotifyEvent] = Field(default_factory=_default_events)


class EmailNotify(Model):
    kind: Literal["email"]
    to: list[Email] = Field(min_length=1)
    smtp: ServerAddress
    sender: Email = "recoveryd@localhost"
    user: str | None = None  # SMTP AUTH user; with `password`
    password: str | None = None  # a reference: env:NAME, credential:NAME or a file
    starttls: bool = False
    on: list[NotifyEvent] = Field(default_factory=_default_events)


Notify = Annotated[WebhookNotify | EmailNotify, Field(discriminator="kind")]


class Metrics(Model):
    listen: ListenAddress = "127.0.0.1:9187"


class Daemon(Model):
    max_concurrent_jobs: int = Field(default=2, ge=1, le=64)
    jitter: Duration = 0.0
    shutdown_grace: Duration = 60.0
    prune_schedule: Text | None = "0 5 * * *"
    # copies snapshots to the targets of their source that missed them (a degraded backup)
    replicate_schedule: Text | None = "every 10m"
    timezone: TimeZone | None = None


class Approver(Model):
    """A person who may approve destructive drill steps: their Ed25519 public key, as the
    `.pub` line `recoveryd approver keygen` writes, or the path of that file."""

    public_key: str | None = None
    public_key_file: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> Approver:
        if (self.public_key is None) == (self.public_key_file is None):
            raise ValueError("give public_key (the .pub line) or public_key_file, not both")
        if self.public_key is not None and not _PUB_LINE.match(self.public_key.strip()):
            raise ValueError('public_key is not an approver key; expected "ed25519 <base64> NAME"')
        return self


_PUB_LINE = re.compile(r"^ed25519 [A-Za-z0-9+/]{43}=( .*)?$")


class ApprovalPolicy(Model):
    """Approvals every playbook with destructive steps needs, whatever the playbook says."""

    destructive_min: int = Field(default=0, ge=0, le=10)


class Config(Model):
    state_dir: str = "/var/lib/recoveryd"
    encryption: Encryption
    targets: dict[Name, Target] = Field(min_length=1)
    sources: dict[Name, Source] = Field(default_factory=dict)
    hosts: dict[Name, Host] = Field(default_factory=dict)
    governor: Governor | None = None
    drills: list[DrillSchedule] = Field(default_factory=list)
    notify: list[Notify] = Field(default_factory=list)
    metrics: Metrics | None = None
    daemon: Daemon = Field(default_factory=Daemon)
    fleet: Fleet | None = None
    language: Literal["zh", "en"] = "en"
    approvers: dict[Name, Approver] = Field(default_factory=dict)
    approval_policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)

    @field_validator("state_dir")
    @classmethod
    def _state_dir_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("state_dir is empty; set it to a writable directory")
        return value


class LoadedConfig:
    """A validated configuration and where it came from (for relative paths and error lines)."""

    def __init__(self, config: Config, path: Path, document: yamlsrc.Document) -> None:
        self.config = config
        self.path = path
        self.document = document

    def resolve_path(self, value: str) -> Path:
        """Relative paths in the file are relative to the file's directory."""
        p = Path(value)
        return p if p.is_absolute() else (self.path.parent / p)


def default_config_path() -> str:
    return os.environ.get("RECOVERYD_CONFIG") or DEFAULT_CONFIG_PATH


def load_config(path: str | Path | None = None) -> LoadedConfig:
    """Load, validate and cross-check the configuration file.

    Raises ConfigError (exit 2) naming the file, line and key path of every problem.
    """
    cfg_path = Path(path or default_config_path())
    doc = yamlsrc.load(cfg_path, what="configuration file")
    if not isinstance(doc.data, dict):
        raise doc.error((), "the configuration must be a mapping of settings")
    config = doc.validate(Config)
    problems = _cross_check(config, doc)
    problems += _paths_of_the_right_kind(config, doc, cfg_path.parent)
    if problems:
        raise problems_error(problems)
    # every secret it refers to is masked from now on, even where this process never uses it
    register_configured(config.model_dump(mode="json"), cfg_path.parent)
    return LoadedConfig(config, cfg_path, doc)


def _paths_of_the_right_kind(
    config: Config, doc: yamlsrc.Document, base: Path
) -> list[ConfigError]:
    """Paths that exist must be of the kind the setting needs (a directory for state_dir)."""
    state_dir = Path(config.state_dir)
    state_dir = state_dir if state_dir.is_absolute() else base / state_dir
    if state_dir.exists() and not state_dir.is_dir():
        message = f"{config.state_dir} exists and is not a directory; name a directory"
        return [doc.error(("state_dir",), message)]
    return []


def _cross_check(config: Config, doc: yamlsrc.Document) -> list[ConfigError]:
    problems: list[ConfigError] = []
    for name, source in config.sources.items():
        for i, target in enumerate(source.targets):
            if target not in config.targets:
                known = ", ".join(sorted(config.targets))
                problems.append(
                    doc.error(
                        ("sources", name, "targets", i),
                        f'unknown target "{target}"; use one of: {known}',
                    )
                )
            if target in source.targets[:i]:
                problems.append(
                    doc.error(
                        ("sources", name, "targets", i),
                        f'target "{target}" is listed twice; name each target once',
                    )
                )
        if source.min_targets > len(source.targets):
            raise doc.error(
                ("sources", name, "min_targets"),
                f"min_targets is {source.min_targets} but the source has only "
                f"{len(source.targets)} target(s); lower it or add targets",
            )
        if source.via_ssh is not None and source.via_ssh not in config.hosts:
            problems.append(
                doc.error(
                    ("sources", name, "via_ssh"),
                    f'unknown host "{source.via_ssh}"; define it under hosts',
                )
            )
        if source.via_ssh is not None and source.kind in ("sqlite", "directory"):
            problems.append(
                doc.error(
                    ("sources", name, "via_ssh"),
                    "via_ssh is supported for postgresql and mysql sources only",
                )
            )
    gov = config.governor
    if gov is not None and gov.signals.db_connections is not None:
        src = gov.signals.db_connections.source
        if src not in config.sources:
            problems.append(
                doc.error(
                    ("governor", "signals", "db_connections", "source"),
                    f'unknown source "{src}"; name one of the configured sources',
                )
            )
    return problems
