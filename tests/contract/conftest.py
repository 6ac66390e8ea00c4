"""The `store` fixture: every ObjectStore implementation, each on a fresh, empty namespace.

Ids: memory, filesystem, ceph-http, ceph-https, swift-http, swift-https. The S3
stores are built by the product's own `open_store` from a target made by
`target_factory` (credentials file, test CA), with 5 MiB parts so that
multipart uploads are exercised by objects of a few MiB.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recoveryd.stores.base import ObjectStore
from recoveryd.stores.factory import open_store

PART_SIZE = 5 * 1024 * 1024
HAVE_MEMORY = importlib.util.find_spec("recoveryd.stores.memory") is not None

STORE_KINDS = [
    pytest.param("memory", marks=[] if HAVE_MEMORY else [pytest.mark.skip("no memory store")]),
    "filesystem",
    pytest.param("ceph-http", marks=pytest.mark.integration),
    pytest.param("ceph-https", marks=pytest.mark.integration),
    pytest.param("swift-http", marks=pytest.mark.integration),
    pytest.param("swift-https", marks=pytest.mark.integration),
]


def _no_secrets(ref: str) -> str:
    raise AssertionError(f"unexpected secret reference {ref}")


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(
    store_kind: str, target_factory: Callable[..., Any], tmp_path: Path
) -> Iterator[ObjectStore]:
    """A fresh store of the parametrized kind."""
    if store_kind == "memory":
        from recoveryd.stores.memory import MemoryStore

        s: ObjectStore = MemoryStore("contract")
    else:
        vendor, _, scheme = store_kind.partition("-")
        extra = {"part_size": PART_SIZE} if vendor != "filesystem" else {}
        spec = target_factory(vendor, https=scheme == "https", **extra)
        s = open_store("contract", spec.target, base_dir=tmp_path, resolve_secret=_no_secrets)
    yield s
    s.close()
