"""The pipes' bare timeouts (:class:`hetnpu.simulator.core._Wake`) against SimPy's event loop:
they rely on its queue layout, so these tests fail if a SimPy release changes it."""

from __future__ import annotations

from heapq import heappush

import simpy
from simpy.events import NORMAL

from hetnpu.simulator.core import _Wake


def _wake(env: simpy.Environment, at: int, callback) -> None:
    # As a pipe schedules one (hetnpu.simulator.core.Pipe).
    heappush(env._queue, (at, NORMAL, next(env._eid), _Wake(callback)))


def test_a_wake_fires_at_its_cycle_in_scheduling_order_with_simpy_timeouts():
    env = simpy.Environment()
    order: list[tuple[str, float]] = []
    env.timeout(5).callbacks.append(lambda _e: order.append(("timeout before", env.now)))
    _wake(env, 5, lambda _e: order.append(("wake", env.now)))
    env.timeout(5).callbacks.append(lambda _e: order.append(("timeout after", env.now)))
    _wake(env, 3, lambda _e: order.append(("early wake", env.now)))
    env.run(until=4)
    assert order == [("early wake", 3)] and env.now == 4
    env.run()
    assert order[1:] == [("timeout before", 5), ("wake", 5), ("timeout after", 5)]


def test_a_wake_counts_as_one_event_and_a_process_can_wait_past_it():
    def run(wake: bool) -> tuple[list[float], int]:
        env = simpy.Environment()
        seen: list[float] = []

        def proc():
            yield env.timeout(2)
            if wake:
                _wake(env, env.now + 3, lambda _e: seen.append(env.now))
            yield env.timeout(4)
            seen.append(env.now)

        env.process(proc())
        env.run()
        return seen, next(env._eid)  # SimPy's event counter, as simulate() reads it

    (with_wake, n_with), (without, n_without) = run(True), run(False)
    assert with_wake == [5, 6] and without == [6]
    assert n_with == n_without + 1
