"""The `fleet:` section of the configuration: several daemons sharing one schedule.

Kept apart from `config.py` so that the single-daemon configuration stays as it
was: without `fleet`, nothing here is used and no coordination library is loaded.
"""

from __future__ import annotations

import re
import socket
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from recoveryd.configtypes import Lease

SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
SiteLabel = Annotated[str, Field(pattern=SITE_PATTERN)]
"""A site label (`core`, `subcentre-east`): letters, digits, `_.-`."""
MemberName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
COORDINATION_SCHEMES = ("etcd3+http", "etcd3+https")


def _url_list(value: Any) -> Any:
    """One URL or a list of URLs (of the same cluster): always a list."""
    return [value] if isinstance(value, str) else value


def _coordination_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    if not sep or scheme not in COORDINATION_SCHEMES or not host or any(c.isspace() for c in value):
        raise ValueError(
            f'"{value}" is not a coordination URL; write it like etcd3+http://10.0.0.1:2379'
        )
    return value


CoordinationUrl = Annotated[str, AfterValidator(_coordination_url)]


class Fleet(BaseModel):
    """Fleet mode: every member runs each job that it owns, once per schedule slot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    coordination: Annotated[
        list[CoordinationUrl], BeforeValidator(_url_list), Field(min_length=1, max_length=16)
    ]
    group: MemberName = "recoveryd"
    member: MemberName | None = None  # the host name when absent
    lease: Lease = 30.0
    serves: list[SiteLabel] = Field(default_factory=list)  # empty: every site


def member_name(fleet: Fleet, override: str | None = None) -> str:
    """This daemon's member name: `override` (--member, RECOVERYD_MEMBER), the configured
    one, else the host name (its first label when it is not a valid name as a whole)."""
    for name in (override, fleet.member):
        if name:
            if not _MEMBER.match(name):
                raise ValueError(
                    f'member name "{name}" is invalid; use letters, digits and _.- '
                    "(at most 63 characters)"
                )
            return name
    host = socket.gethostname()
    return host if _MEMBER.match(host) else host.split(".", 1)[0] or "recoveryd"
