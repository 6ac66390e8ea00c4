"""When a fleet member fences itself, on its own monotonic clock (a frozen clock here)."""

from __future__ import annotations

from recoveryd.daemon.fence import LeaseFence


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_member_is_fenced_until_a_refresh_is_answered() -> None:
    """Before any answered refresh the member cannot prove it holds a lease."""
    fence = LeaseFence(30.0, Clock())
    assert fence.fenced()
    assert fence.deadline() is None
    assert fence.remaining() == 0.0


def test_the_fence_falls_a_third_of_a_lease_before_the_lease_can_run_out() -> None:
    """etcd renews the lease after the refresh was sent, so counted from the sending the
    lease lives at least `lease` seconds; the fence is at two thirds of that (the margin,
    a third of the lease, is what the running jobs have to stop)."""
    clock = Clock()
    fence = LeaseFence(30.0, clock)
    assert fence.renewed(sent=100.0, answered=100.5)
    assert fence.margin == 10.0
    assert fence.deadline() == 120.0
    clock.now = 119.9
    assert not fence.fenced()
    assert round(fence.remaining(), 6) == 0.1
    clock.now = 120.0
    assert fence.fenced()


def test_a_refresh_answered_after_the_lease_could_have_run_out_renews_nothing_held() -> None:
    """Answered later than `lease` after the previous refresh was sent (the process was
    frozen, or the network held the request): etcd may have dropped the lease and its
    locks in between, so `renewed` says the lease did not hold; the new deadline counts
    from the new refresh all the same."""
    fence = LeaseFence(30.0, Clock())
    fence.renewed(sent=100.0, answered=101.0)
    assert fence.renewed(sent=110.0, answered=129.9)
    assert not fence.renewed(sent=135.0, answered=140.0)
    assert fence.deadline() == 155.0


def test_an_older_refresh_answered_late_does_not_move_the_deadline_back() -> None:
    """Refreshes may overlap (a slow one and a retry): the deadline follows the newest."""
    fence = LeaseFence(30.0, Clock())
    fence.renewed(sent=110.0, answered=111.0)
    fence.renewed(sent=105.0, answered=112.0)
    assert fence.deadline() == 130.0
