"""The `targets:` section of the configuration: where each repository lives (an S3 bucket
or a directory) and how it is written. Kept apart from `config.py`, which re-exports the
models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from recoveryd.configtypes import (
    Duration,
    HttpUrl,
    PackSize,
    PartSize,
    PositiveSize,
    Text,
)


class Model(BaseModel):
    """Base: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectLock(Model):
    mode: Literal["compliance", "governance"]
    days: int = Field(gt=0, le=36500)


class _TargetBase(Model):
    """What every kind of target has: how fast and how parallel it is written, and the
    size of the pack objects new chunks go into (a repository setting: packs already
    stored keep theirs; a version 1 repository stays one object per chunk; unset, the
    size the repository was created with, and DEFAULT_PACK_SIZE for a new one)."""

    max_bandwidth: PositiveSize | None = None
    upload_concurrency: int = Field(default=4, ge=1, le=64)
    pack_size: PackSize | None = None


class S3Target(_TargetBase):
    kind: Literal["s3"]
    bucket: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")]
    prefix: Annotated[str, Field(max_length=1024)] = ""
    endpoint_url: HttpUrl | None = None
    region: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")] | None = None
    credentials_file: Text | None = None
    access_key_id: str | None = None  # a reference: env:NAME or credential:NAME, never the value
    secret_access_key: str | None = None  # a reference: env:NAME or credential:NAME
    ca_bundle: Text | None = None
    verify_tls: bool = True
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    object_lock: ObjectLock | None = None
    part_size: PartSize = 16 * 1024 * 1024
    # bounded so that a store that stops answering fails a request in bounded time:
    # at most `attempts` x (connect_timeout or read_timeout) plus the backoff between tries
    connect_timeout: Duration = Field(default=10.0, gt=0)
    read_timeout: Duration = Field(default=60.0, gt=0)
    attempts: int = Field(default=5, ge=1, le=20)


class FilesystemTarget(_TargetBase):
    kind: Literal["filesystem"]
    path: Text


Target = Annotated[S3Target | FilesystemTarget, Field(discriminator="kind")]
