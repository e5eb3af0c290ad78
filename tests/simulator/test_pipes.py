"""The pipes of a core as the simulator runs them (core.py): flags, a read's round trip, and
the order in which GM transfers take the shared bus."""

from __future__ import annotations

import simpy

from hetnpu.simulator.core import BIG, ROLE_IDS, Bus, Pipe, compile_program, run_core
from hetnpu.simulator.isa import CORE_UNITS, Instr

LATENCY = 500  # GM round trip (cycles)
RATE = 10.0  # bus bytes per cycle
NBYTES = 1000  # each transfer: 100 cycles on the engine and on the bus


def _read(flag: tuple[str, str, int] | None, role: str) -> Instr:
    sets = (flag,) if flag else ()
    return Instr("MTE2", "mte2.load", 100 + LATENCY, NBYTES, role, "GM", "UB", sets=sets)


def _run(programs: list[tuple[int, tuple[Instr, ...]]]) -> tuple[list[list], Bus]:
    """Run each (start cycle, program) on a core of its own; return each core's
    (instr index, start, end) records per unit, and the HBM bus."""
    env = simpy.Environment()
    hbm, l2 = Bus("hbm", RATE), Bus("l2", RATE)
    remaining = [0] * 64
    for role in ("in0", "in1", "out0"):
        remaining[ROLE_IDS.setdefault(role, len(ROLE_IDS))] = BIG  # every byte from HBM
    records: list[list] = []

    def launch(at: int, prog) -> None:
        pipes = {u: Pipe(env, hbm, l2) for u in CORE_UNITS if u != "SCALAR"}

        def start(_ev: simpy.Event) -> None:
            _, _, recs = run_core(env, prog, remaining, pipes, True, lambda: None)
            records.append(recs)

        env.timeout(at).callbacks.append(start)

    for at, instrs in programs:
        launch(at, compile_program(instrs, (), 1, LATENCY))
    env.run()
    return records, hbm


def test_a_consumer_starts_when_the_read_data_lands():
    flag = ("MTE2", "VECTOR", 0)
    vec = Instr("VECTOR", "vec.add", 40, NBYTES, waits=(flag,))
    (recs,), _ = _run([(0, (_read(flag, "in0"), vec))])
    (read,), (add,) = recs
    assert read[1:] == (1, 101)  # issued at cycle 1, 100 cycles on the engine
    assert add[1:] == (101 + LATENCY, 101 + LATENCY + 40)


def test_a_write_waiting_for_read_data_takes_the_bus_when_the_data_lands():
    # Core A reads, then writes what it read; its data lands at 101 + LATENCY = 601. Core B
    # starts a read at 551, inside A's round trip: it gets the bus first (551-651), and A's
    # write, which asks for the bus only at 601, queues behind it (651-751).
    flag = ("MTE2", "MTE3", 0)
    write = Instr("MTE3", "mte3.store", 100 + LATENCY, NBYTES, "out0", "UB", "GM", waits=(flag,))
    recs, hbm = _run([(0, (_read(flag, "in0"), write)), (550, (_read(None, "in1"),))])
    (a_read,), (a_write,) = recs[0]
    ((b_read,),) = recs[1]
    assert a_read[1:] == (1, 101)
    assert b_read[1:] == (551, 651)
    assert a_write[1:] == (601, 751)
    assert hbm.busy == 300 and hbm.free_at == 751


def test_reads_queued_on_one_flag_land_in_order():
    # Two reads set the same flag (their data lands at 601 and 701); the consumer is busy until
    # 252, when both are counted, and takes them first in, first out: 601-641, then 701-741.
    flag = ("MTE2", "VECTOR", 0)
    busy = Instr("VECTOR", "vec.dup", 250, 0)
    use = Instr("VECTOR", "vec.add", 40, NBYTES, waits=(flag,))
    (recs,), _ = _run([(0, (_read(flag, "in0"), _read(flag, "in0"), busy, use, use))])
    reads, vector = recs
    assert [r[1:] for r in reads] == [(1, 101), (101, 201)]
    assert [r[1:] for r in vector] == [(3, 253), (601, 641), (701, 741)]
