"""Flow control: a wait for bandwidth ends at once when the run is stopped, and a stop made
of several events (a shutdown, a lost claim) can be waited on."""

from __future__ import annotations

import threading

import pytest

from recoveryd.errors import ExitCode, InterruptedOperation
from recoveryd.flow import AnyEvent, StopSignal, TokenBucket


class FrozenClock:
    """Time that never moves; records what the bucket asked its `sleep` for."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_a_bucket_without_a_stop_sleeps_its_wait() -> None:
    """Without a cancel event the wait is the injected sleep, as long as the bytes before
    need: 3600 bytes at 1 B/s."""
    clock = FrozenClock()
    bucket = TokenBucket(1.0, clock=clock, sleep=clock.sleep)
    bucket.take(3600)
    bucket.take(1)
    assert clock.slept == [3600.0]


def test_a_stop_already_set_ends_the_wait_at_once() -> None:
    """The second take would wait an hour; the bucket's cancel event is set, so it raises
    InterruptedOperation (exit 130, nothing committed) instead of sleeping."""
    clock = FrozenClock()
    cancel = threading.Event()
    cancel.set()
    bucket = TokenBucket(1.0, clock=clock, sleep=clock.sleep, cancel=cancel)
    bucket.take(3600)  # the first bytes pass: nothing came before them
    with pytest.raises(InterruptedOperation, match="not committed") as info:
        bucket.take(1)
    assert info.value.exit_code == ExitCode.INTERRUPTED
    assert clock.slept == []


@pytest.mark.timeout(60)
def test_a_stop_set_by_another_thread_ends_a_wait_of_an_hour() -> None:
    """A take waits on the cancel event for the hour the bytes before it need; another
    thread's stop ends that wait (the test's timeout is far shorter than the hour)."""
    clock = FrozenClock()
    cancel = threading.Event()
    bucket = TokenBucket(1.0, clock=clock, sleep=clock.sleep, cancel=cancel)
    bucket.take(3600)
    stopper = threading.Thread(target=cancel.set)
    stopper.start()
    with pytest.raises(InterruptedOperation):
        bucket.take(1)
    stopper.join()
    assert clock.slept == []


def test_no_wait_no_interruption() -> None:
    """A stop does not fail bytes that need no wait (an unlimited bucket, or the first
    bytes): only a wait is cut short."""
    cancel = threading.Event()
    cancel.set()
    TokenBucket(None, cancel=cancel).take(1 << 30)
    TokenBucket(1.0, clock=FrozenClock(), cancel=cancel).take(1 << 30)


def test_any_event_is_set_when_one_of_its_events_is() -> None:
    """Set when it is set itself or when any event it combines is; a wait with nothing set
    runs out (False)."""
    first, second = threading.Event(), threading.Event()
    either = AnyEvent(first, second)
    assert not either.is_set()
    assert not either.wait(0)
    second.set()
    assert either.is_set()
    assert either.wait(0)
    own = AnyEvent(threading.Event())
    own.set()
    assert own.is_set() and own.wait(3600)


@pytest.mark.timeout(60)
def test_a_wait_on_any_event_ends_when_another_thread_sets_one() -> None:
    """A wait of an hour on the combination ends when another thread sets one of its events
    (the test's timeout is far shorter than the hour)."""
    shutdown, lost = threading.Event(), threading.Event()
    either = AnyEvent(shutdown, lost)
    setter = threading.Thread(target=lost.set)
    setter.start()
    assert either.wait(3600)
    setter.join()


def test_a_shielded_stop_signal_waits_its_time_and_a_bucket_wait_completes() -> None:
    """Inside `shielded()` a set stop is not seen: `is_set` is False, a wait lasts its
    timeout and returns False, and a bandwidth wait on the signal completes instead of
    raising (a real wait of 0.1 s: with a stop to wait on, the bucket does not use its
    injected sleep); outside it the stop is seen again."""
    stop = threading.Event()
    signal = StopSignal(stop)
    stop.set()
    assert signal.is_set()
    slept: list[float] = []
    bucket = TokenBucket(1000.0, clock=lambda: 0.0, sleep=slept.append, cancel=signal)
    with signal.shielded():
        assert not signal.is_set()
        assert signal.wait(0.01) is False
        bucket.take(100)
        bucket.take(100)  # waits 0.1 s on the signal: not interrupted
    assert slept == []
    assert signal.is_set()
    with pytest.raises(InterruptedOperation):
        bucket.take(100)


def test_a_wait_across_the_end_of_a_shield_sees_the_stop() -> None:
    """A thread waiting with no timeout while the shield hides a stop returns True once
    the shield ends, not before: the stop is seen as soon as the commit is over."""
    stop = threading.Event()
    signal = StopSignal(stop)
    seen: list[bool] = []
    with signal.shielded():
        stop.set()
        waiter = threading.Thread(target=lambda: seen.append(signal.wait()))
        waiter.start()
        assert signal.wait(0.2) is False  # the waiter polls meanwhile and sees nothing
        assert seen == []
    waiter.join(timeout=10)
    assert seen == [True]


def test_a_shield_ends_at_its_deadline() -> None:
    """A shield lasts at most its `seconds`: a commit that takes longer (a store that does
    not answer) sees the stop again, so a stopped run cannot hang on it."""
    stop = threading.Event()
    signal = StopSignal(stop)
    stop.set()
    with signal.shielded(seconds=0.0):
        assert signal.is_set()
        assert signal.wait(10) is True
