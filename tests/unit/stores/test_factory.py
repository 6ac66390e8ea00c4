"""open_store: credentials, paths relative to the config, wrappers, clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from recoveryd.config import FilesystemTarget, S3Target
from recoveryd.errors import InterruptedOperation, StoreError
from recoveryd.stores.factory import open_store
from recoveryd.stores.filesystem import FilesystemStore
from recoveryd.stores.s3 import S3Store
from recoveryd.stores.wrappers import RetryingStore, ThrottledStore, innermost

SECRETS = {"env:KEY_ID": "AKIDEXAMPLE", "env:SECRET": "s3cr3t-value"}


def resolve(ref: str) -> str:
    return SECRETS[ref]


def s3_target(**kw: object) -> S3Target:
    return S3Target.model_validate(
        {"kind": "s3", "bucket": "backups", "endpoint_url": "http://127.0.0.1:9", **kw}
    )


def test_filesystem_target_relative_to_the_config_dir(tmp_path: Path) -> None:
    """A relative filesystem path is resolved against the config file's directory."""
    store = open_store(
        "local",
        FilesystemTarget(kind="filesystem", path="repo"),
        base_dir=tmp_path,
        resolve_secret=resolve,
    )
    fs = innermost(store)
    assert isinstance(store, RetryingStore)
    assert isinstance(fs, FilesystemStore)
    assert fs.root == tmp_path / "repo"
    store.put("config", b"x")
    assert (tmp_path / "repo" / "config").read_bytes() == b"x"


def test_max_bandwidth_adds_a_throttle(tmp_path: Path) -> None:
    """A target with max_bandwidth is throttled; without it, it is not."""
    throttled = open_store(
        "local",
        FilesystemTarget(kind="filesystem", path="repo", max_bandwidth=1024 * 1024),
        base_dir=tmp_path,
        resolve_secret=resolve,
    )
    assert isinstance(throttled, RetryingStore)
    assert isinstance(throttled.inner, ThrottledStore)


def test_a_stop_given_to_the_store_ends_its_waits(tmp_path: Path) -> None:
    """The run's cancel event reaches both wrappers: once it is set, a put that must wait
    for bandwidth (1 B/s, after a first put of 3600 bytes) raises InterruptedOperation,
    and the retry backoff waits on it too."""
    cancel = threading.Event()
    store = open_store(
        "local",
        FilesystemTarget(kind="filesystem", path="repo", max_bandwidth=1),
        base_dir=tmp_path,
        resolve_secret=resolve,
        cancel=cancel,
    )
    assert isinstance(store, RetryingStore)
    assert store.cancel is cancel
    store.put("a", b"x" * 3600)
    cancel.set()
    with pytest.raises(InterruptedOperation):
        store.put("b", b"x")
    assert not (tmp_path / "repo" / "b").exists()


def test_credentials_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    """An AWS-style credentials file ([default]) supplies the key pair."""
    (tmp_path / "creds").write_text(
        "[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET\n"
    )
    (tmp_path / "creds").chmod(0o600)
    store = innermost(
        open_store(
            "primary",
            s3_target(credentials_file="creds"),
            base_dir=tmp_path,
            resolve_secret=resolve,
        )
    )
    assert isinstance(store, S3Store)
    assert store.settings.credentials is not None
    assert store.settings.credentials.access_key_id == "AKID"
    assert store.settings.credentials.secret_access_key == "SECRET"
    assert "SECRET" not in repr(store.settings)


def test_missing_credentials_file_names_target_and_path(tmp_path: Path) -> None:
    """A missing credentials file is one clear sentence with the fix."""
    with pytest.raises(StoreError) as info:
        open_store(
            "primary", s3_target(credentials_file="/x"), base_dir=tmp_path, resolve_secret=resolve
        )
    assert (
        str(info.value)
        == "target primary: credentials_file /x: not found; create it or fix the path"
    )


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[default]\naws_access_key_id = A\n",
        "[other]\naws_access_key_id=A\naws_secret_access_key=B\n",
        "no section",
    ],
)
def test_incomplete_credentials_file_is_refused(tmp_path: Path, content: str) -> None:
    """A credentials file without both keys in [default] is refused, naming the file."""
    path = tmp_path / "creds"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(StoreError, match=f"target primary: credentials_file {path}: "):
        open_store(
            "primary",
            s3_target(credentials_file=str(path)),
            base_dir=tmp_path,
            resolve_secret=resolve,
        )


def test_secret_references_are_resolved(tmp_path: Path) -> None:
    """access_key_id/secret_access_key are references resolved by the given resolver."""
    target = s3_target(access_key_id="env:KEY_ID", secret_access_key="env:SECRET")
    store = innermost(open_store("primary", target, base_dir=tmp_path, resolve_secret=resolve))
    assert isinstance(store, S3Store)
    assert store.settings.credentials is not None
    assert store.settings.credentials.access_key_id == "AKIDEXAMPLE"
    assert store.settings.credentials.secret_access_key == "s3cr3t-value"


def test_half_a_key_pair_is_refused(tmp_path: Path) -> None:
    """Setting only one of the two references is a configuration mistake."""
    with pytest.raises(StoreError, match="set both access_key_id and secret_access_key"):
        open_store(
            "primary",
            s3_target(access_key_id="env:KEY_ID"),
            base_dir=tmp_path,
            resolve_secret=resolve,
        )


def test_missing_ca_bundle_is_refused(tmp_path: Path) -> None:
    """A ca_bundle that does not exist is reported before any connection is tried."""
    with pytest.raises(StoreError, match=r"target primary: ca_bundle .*ca.pem: not found"):
        open_store(
            "primary", s3_target(ca_bundle="ca.pem"), base_dir=tmp_path, resolve_secret=resolve
        )


def test_s3_settings_follow_the_target(tmp_path: Path) -> None:
    """Prefix, addressing, TLS and part size are taken from the target."""
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    target = s3_target(prefix="/site-a/", ca_bundle="ca.pem", part_size="8MiB", region="eu-1")
    store = innermost(open_store("primary", target, base_dir=tmp_path, resolve_secret=resolve))
    assert isinstance(store, S3Store)
    assert store.prefix == "site-a/"
    assert store.settings.ca_bundle == str(tmp_path / "ca.pem")
    assert store.settings.part_size == 8 * 1024 * 1024
    assert store.settings.region == "eu-1"
    assert store.settings.addressing_style == "path"
