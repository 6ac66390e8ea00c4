"""Fixtures of the fleet tests shared by more than one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.blackhole import BlackholeProxy
from tests.fixtures.etcd import EtcdCluster


@pytest.fixture
def proxies(etcd_cluster: EtcdCluster) -> Iterator[list[BlackholeProxy]]:
    """A TCP proxy in front of each etcd node (a member reaching etcd through them can be
    cut off by turning them into blackholes)."""
    started = [BlackholeProxy(node.client_port).start() for node in etcd_cluster.nodes]
    yield started
    for proxy in started:
        proxy.close()
