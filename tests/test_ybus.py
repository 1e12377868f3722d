"""ybus, the project's polled RS-485 bus: on a lossy line every press is acted on exactly once,
in order; a silent device goes offline and comes back; SHOW reaches the device once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.codecs import ybus

_clock: dict[int, float] = {}      # per host, so a later run goes on from where one stopped


def run(host: ybus.BusHost, devices: dict[int, ybus.BusDevice], steps: int,
        lost=lambda i: False, silent=frozenset()) -> list:  # noqa: ANN001
    """Drives the line for ``steps`` request slots, 10 ms apart; ``lost(i)`` drops the i-th
    transmission (either way); ``silent`` devices do not answer."""
    events, now, sent = [], _clock.get(id(host), 0.0), 0
    for _ in range(steps):
        now += 0.01
        _clock[id(host)] = now
        events += host.expired(now)
        frame = host.request(now)
        if frame is None:
            continue
        sent += 1
        if lost(sent):
            continue
        answer = b"".join(d.receive(frame) for a, d in devices.items() if a not in silent)
        sent += 1
        if answer and not lost(sent):
            events += host.receive(answer, now)
    return events


def presses(events: list) -> list[tuple[int, str, str]]:
    return [(e.addr, e.key, e.arg) for e in events if isinstance(e, ybus.Pressed)]


def test_presses_arrive_in_order_and_bring_the_device_online():
    host, dev = ybus.BusHost([1, 2]), ybus.BusDevice(2)
    dev.press("login", "1001")
    dev.press("next")
    events = run(host, {2: dev}, 40)
    assert presses(events) == [(2, "login", "1001"), (2, "next", "")]
    assert ybus.Online(2) in events and ybus.Online(1) not in events
    assert dev.pending == 0


def test_a_press_offered_again_after_a_lost_ack_is_acted_on_once():
    host, dev = ybus.BusHost([7]), ybus.BusDevice(7)
    run(host, {7: dev}, 5)                               # online
    dev.press("next")
    acks = []
    original = host.request

    def drop_first_ack(now):  # noqa: ANN001, ANN202
        frame = original(now)
        if frame and frame[4] == ybus.ACK and not acks:
            acks.append(frame)
            return b"\x00"                               # the ACK is lost on the line
        return frame

    host.request = drop_first_ack
    events = run(host, {7: dev}, 30)
    assert presses(events) == [(7, "next", "")]
    assert acks and host.repeats >= 1 and dev.pending == 0


def test_a_silent_device_goes_offline_and_comes_back():
    host, dev = ybus.BusHost([3], offline_after=3), ybus.BusDevice(3)
    assert ybus.Online(3) in run(host, {3: dev}, 5)
    events = run(host, {3: dev}, 60, silent={3})
    assert events.count(ybus.Offline(3)) == 1
    assert run(host, {3: dev}, 5).count(ybus.Online(3)) == 1


def test_show_reaches_the_device_once_and_only_the_newest_is_kept():
    host, dev = ybus.BusHost([1]), ybus.BusDevice(1)
    run(host, {1: dev}, 3)
    host.show(1, "A011")
    host.show(1, "A012 请到3号窗口")
    host.beep(1)
    run(host, {1: dev}, 20)
    assert dev.shown == "A012 请到3号窗口" and dev.beeps == 1


@pytest.mark.slow                               # 150 hypothesis examples: ~1.5 s
@settings(max_examples=150, deadline=None)
@given(keys=st.lists(st.sampled_from(["next", "recall", "no_show", "pause", "resume"]),
                     min_size=1, max_size=12),
       loss=st.lists(st.booleans(), min_size=1, max_size=64), session=st.integers(0, 255))
def test_on_a_lossy_line_every_press_is_acted_on_exactly_once_in_order(keys, loss, session):
    host, dev = ybus.BusHost([5, 6], offline_after=1000), ybus.BusDevice(5, session)
    for key in keys:
        dev.press(key)
    # the first len(loss) transmissions are lost where loss says so, then the line is clean
    events = run(host, {5: dev}, 400 + 8 * len(keys),
                 lost=lambda i: i <= len(loss) and loss[i - 1])
    assert [k for _, k, _ in presses(events)] == keys
    assert dev.pending == 0


def test_a_rebooted_device_is_not_mistaken_for_a_repeat():
    host = ybus.BusHost([4])
    first = ybus.BusDevice(4, session=10)
    first.press("next")
    run(host, {4: first}, 10)
    rebooted = ybus.BusDevice(4, session=11)             # seq starts at 1 again
    rebooted.press("next")
    assert presses(run(host, {4: rebooted}, 10)) == [(4, "next", "")]


def test_a_bitmap_arrives_whole_in_chunks_and_a_newer_one_replaces_it():
    host, dev = ybus.BusHost([1]), ybus.BusDevice(1)
    run(host, {1: dev}, 3)
    old, new = bytes(range(256)) * 2, bytes(reversed(range(256))) * 2    # 128 × 32 dots
    host.bitmap(1, 128, 32, old)
    host.bitmap(1, 128, 32, new)
    lossy = {7, 12}
    run(host, {1: dev}, 40, lost=lambda i: i in lossy)
    assert dev.bitmap == (128, 32, new)
