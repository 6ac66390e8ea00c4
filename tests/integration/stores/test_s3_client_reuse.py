"""One S3 client (and connection pool) per endpoint and credentials in a process, on the
real Ceph RGW of the fixtures: opening a target again reuses it, other credentials never."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recoveryd.errors import StoreError
from recoveryd.stores.base import ObjectStore
from recoveryd.stores.factory import open_store
from recoveryd.stores.s3 import S3Store
from recoveryd.stores.s3_client import CLIENTS, client_key
from recoveryd.stores.wrappers import innermost

from ...fixtures.objectstores import TargetSpec

pytestmark = pytest.mark.integration


def _open(spec: TargetSpec, name: str = "offsite") -> ObjectStore:
    return open_store(name, spec.target, base_dir=spec.base_dir, resolve_secret=str)


def _s3(store: ObjectStore) -> S3Store:
    inner = innermost(store)
    assert isinstance(inner, S3Store)
    return inner


def _pool_connections(store: S3Store) -> int:
    """Connections the client's pool has opened so far to the store's endpoint (botocore's
    urllib3 pool manager: a test looks inside, the product does not)."""
    manager = store.client._endpoint.http_session._manager  # type: ignore[attr-defined]
    return sum(pool.num_connections for pool in manager.pools._container.values())


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_two_opens_of_a_target_share_one_client_and_its_connections(
    target_factory: Callable[..., TargetSpec], https: bool
) -> None:
    """The second open of a target gets the first's client: its requests go over the
    connection the first opened (no new TLS handshake); closing one store leaves the
    other working, and the client stays cached for the next open."""
    spec = target_factory("ceph", https=https)
    first = _open(spec)
    first.put("data/one", b"1")
    opened = _pool_connections(_s3(first))
    second = _open(spec, "offsite-again")
    assert _s3(second).client is _s3(first).client
    assert second.get("data/one") == b"1"
    assert _pool_connections(_s3(second)) == opened
    key = client_key(_s3(first).settings)
    users = CLIENTS.users(key)
    first.close()
    assert CLIENTS.users(key) == users - 1
    assert second.get("data/one") == b"1"
    second.close()
    third = _open(spec)
    assert _s3(third).client is _s3(second).client
    third.close()


def test_other_credentials_get_their_own_client(
    target_factory: Callable[..., TargetSpec], tmp_path: Path
) -> None:
    """A store opened with a wrong secret for the same access key and endpoint does not
    borrow the right one's client: the store refuses it, while the right one still works;
    the secret is in no cache key."""
    spec = target_factory("ceph")
    good = _open(spec)
    good.put("data/x", b"x")
    assert spec.server is not None
    wrong_file = tmp_path / "wrong-credentials"
    wrong_file.write_text(
        f"[default]\naws_access_key_id = {spec.server.access_key}\n"
        f"aws_secret_access_key = wrong-{spec.server.secret_key}\n"
    )
    wrong_file.chmod(0o600)
    wrong_spec = TargetSpec(
        spec.kind,
        spec.target.model_copy(update={"credentials_file": str(wrong_file)}),
        wrong_file,
        spec.base_dir,
        spec.server,
    )
    wrong = _open(wrong_spec)
    assert _s3(wrong).client is not _s3(good).client
    with pytest.raises(StoreError, match="refused the credentials"):
        wrong.get("data/x")
    assert good.get("data/x") == b"x"
    for store in (good, wrong):
        assert spec.server.secret_key not in repr(client_key(_s3(store).settings))
    good.close()
    wrong.close()
