"""The owner of a job: tooz's consistent-hash ring over the live members that serve the
job's site."""

from __future__ import annotations

from collections import Counter

from recoveryd.fleet import Member, Partition, job_key


def test_every_member_computes_the_same_owner_whatever_the_order_it_lists_them() -> None:
    """The partition depends on the set of members only."""
    one = Partition([Member("a"), Member("b"), Member("c")])
    other = Partition([Member("c"), Member("a"), Member("b")])
    keys = [job_key(f"backup:s{i}", f"s{i}") for i in range(200)]
    assert [one.owner(k, None) for k in keys] == [other.owner(k, None) for k in keys]


def test_a_member_leaving_moves_only_its_own_jobs_and_the_load_spreads() -> None:
    """Consistent hashing: when `b` leaves, the jobs of `a` and `c` stay where they were;
    1,000 jobs over three members land within 20% of a third each."""
    full = Partition([Member("a"), Member("b"), Member("c")])
    less = Partition([Member("a"), Member("c")])
    keys = [job_key(f"backup:s{i}", f"s{i}") for i in range(1000)]
    before = {k: full.owner(k, None) for k in keys}
    after = {k: less.owner(k, None) for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != "b")
    counts = Counter(before.values())
    assert all(abs(n - 1000 / 3) < 1000 / 3 * 0.2 for n in counts.values()), counts


def test_a_source_of_a_site_is_owned_only_by_members_that_serve_the_site() -> None:
    """`serves` restricts a member to its sites; an empty list serves every site; a site no
    live member serves has no owner; a job without a site may go to any member."""
    members = [Member("core-1", ("core",)), Member("east-1", ("east", "core")), Member("any")]
    part = Partition(members)
    owners = {part.owner(f"source:s{i}", "east") for i in range(100)}
    assert owners <= {"east-1", "any"}
    assert Partition(members[:2]).owner("source:x", "west") is None
    assert {part.owner(f"prune{i}", None) for i in range(100)} == {"core-1", "east-1", "any"}


def test_all_jobs_of_a_source_hash_to_the_same_member() -> None:
    """Backup, verify and restore drill of one source share their key: one member."""
    assert job_key("backup:pop", "pop") == job_key("verify:pop", "pop") == "source:pop"
    assert job_key("prune", None) == "prune"


def test_a_member_reports_its_own_site_as_the_first_it_serves() -> None:
    """`site` is the first label of `serves`; none when it serves every site."""
    assert Member("m", ("east", "core")).site == "east"
    assert Member("m").site is None
