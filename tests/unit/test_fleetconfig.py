"""The `fleet` section of the configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recoveryd.fleetconfig import Fleet, member_name


def test_one_url_or_a_list_and_the_defaults() -> None:
    """`coordination` takes one URL or a list; group `recoveryd`, lease 30 s, every site."""
    one = Fleet.model_validate({"coordination": "etcd3+http://10.0.0.1:2379"})
    assert one.coordination == ["etcd3+http://10.0.0.1:2379"]
    assert (one.group, one.lease, one.serves, one.member) == ("recoveryd", 30.0, [], None)
    many = Fleet.model_validate(
        {"coordination": ["etcd3+http://e1:2379", "etcd3+https://e2:2379"], "lease": "1m"}
    )
    assert len(many.coordination) == 2
    assert many.lease == 60.0


@pytest.mark.parametrize(
    "fields",
    [
        {"coordination": []},
        {"coordination": "zookeeper://z1:2181"},
        {"coordination": "etcd3+http://"},
        {"coordination": "etcd3+http://e1:2379", "lease": "4s"},
        {"coordination": "etcd3+http://e1:2379", "member": "has space"},
        {"coordination": "etcd3+http://e1:2379", "colour": "blue"},
    ],
)
def test_invalid_fleet_settings_are_refused(fields: dict[str, object]) -> None:
    """No URL, another scheme, no host, a lease under 5 s, a bad name, an unknown key."""
    with pytest.raises(ValidationError):
        Fleet.model_validate(fields)


def test_the_member_name_override_wins_then_the_file_then_the_host_name() -> None:
    """--member / RECOVERYD_MEMBER, then `fleet.member`, then the host name; an invalid
    override is refused."""
    fleet = Fleet.model_validate({"coordination": "etcd3+http://e1:2379", "member": "core-1"})
    assert member_name(fleet, "east-2") == "east-2"
    assert member_name(fleet) == "core-1"
    assert member_name(Fleet.model_validate({"coordination": "etcd3+http://e1:2379"}))
    with pytest.raises(ValueError, match="invalid"):
        member_name(fleet, "no/slash")
