"""Collectives between NPUs (all-reduce, all-gather, reduce-scatter, all-to-all, send/recv)
timed on the links of a :class:`~hetnpu.devices.topology.Topology`.

A collective is run as HCCL runs it: as an algorithm, a list of steps, each a set of sends
(src, dst, bytes) that go at once; a step starts when the previous one has ended everywhere.
Every send holds the lanes it crosses (:meth:`Topology.lanes`: its own pair link on a full
mesh, the sender's ``tx`` and the receiver's ``rx`` port on a switch) for α + bytes·β of its
link, as SimPy resources on the system timeline, so collectives and stage transfers that share
a lane queue behind each other and everything else overlaps.

The algorithms and their costs are those of the HCCL documentation (cann-hccl ``docs/Ring.md``,
``docs/Mesh.md``; PairWise for all-to-all is listed in its README). With ``n`` the bytes of
the whole tensor and ``p`` ranks:

==============  ========================================  ==============================
collective      ring                                      mesh (full mesh)
==============  ========================================  ==============================
all-reduce      2(p-1) steps of n/p: 2(p-1)(α + n/p·β)    2 steps: 2(α + n/p·β)
all-gather      p-1 steps of n/p                          1 step: α + n/p·β
reduce-scatter  p-1 steps of n/p                          1 step: α + n/p·β
all-to-all      pairwise: p-1 steps of n/p                1 step: α + n/p·β
send/recv       one send of n: α + n·β
==============  ========================================  ==============================

``n`` is the tensor on each rank: the reduced tensor for all-reduce and reduce-scatter (its
input), the gathered one for all-gather (its output), the buffer each rank holds for
all-to-all (each peer gets ``n/p`` of it). On a ring that crosses levels (two servers), every
step takes its slowest send: α and β are the slowest link's.

Left out: the local reduction of the received chunks (HCCL's γ term: a plan's reduce ops run as
NPU ops of their stage instead), HCCL's hierarchical and pipelined algorithms (H-D, AHC, the
chunk pipelining it turns on above 32 KB–1 MB), the notify/handshake cost between steps beyond
the link latency, and rank-level overlap across step boundaries (a step waits for the whole
previous step, as a barrier).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from hetnpu.devices.topology import Topology
from hetnpu.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "KINDS",
    "CollectiveRecord",
    "Send",
    "choose_algorithm",
    "closed_form_s",
    "run_collective",
    "simulate_collective",
    "steps",
]

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "send-recv")
ALGORITHMS = ("ring", "mesh", "pairwise", "direct")

_ALLOWED = {
    "all-reduce": ("ring", "mesh"),
    "all-gather": ("ring", "mesh"),
    "reduce-scatter": ("ring", "mesh"),
    "all-to-all": ("pairwise", "mesh"),
    "send-recv": ("direct",),
}


@dataclass(frozen=True)
class Send:
    """One message of one step."""

    src: str
    dst: str
    nbytes: float


@dataclass(frozen=True)
class CollectiveRecord:
    """When a collective ran and the sends it made: (src, dst, lane, start s, end s)."""

    name: str
    kind: str
    algorithm: str
    ranks: tuple[str, ...]
    nbytes: int
    start_s: float
    end_s: float
    sends: tuple[tuple[str, str, str, float, float], ...] = ()

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def choose_algorithm(kind: str, ranks: Sequence[str], topology: Topology) -> str:
    """HCCL's choice on these topologies: mesh where every pair of ranks has its own link,
    ring (pairwise for all-to-all) otherwise.

    Raises
    ------
    ConfigError
        Unknown kind, or a rank the topology does not have.
    """
    _check(kind, ranks, topology)
    if kind == "send-recv":
        return "direct"
    if topology.is_full_mesh(list(ranks)):
        return "mesh"
    return "pairwise" if kind == "all-to-all" else "ring"


def steps(kind: str, ranks: Sequence[str], nbytes: float, algorithm: str) -> list[list[Send]]:
    """The steps of ``kind`` over ``ranks`` by ``algorithm`` (see the module's table).

    Raises
    ------
    ConfigError
        An algorithm that does not implement ``kind``.
    """
    if algorithm not in _ALLOWED.get(kind, ()):
        raise ConfigError(
            f"collective {kind!r} has no algorithm {algorithm!r}; "
            f"choose one of {', '.join(_ALLOWED.get(kind, ()))}"
        )
    p = len(ranks)
    if kind == "send-recv":
        return [[Send(ranks[0], ranks[1], nbytes)]]
    chunk = nbytes / p
    if algorithm == "mesh":
        one = [Send(a, b, chunk) for a in ranks for b in ranks if a != b]
        return [one, list(one)] if kind == "all-reduce" else [one]
    if algorithm == "pairwise":
        return [[Send(ranks[r], ranks[(r + k) % p], chunk) for r in range(p)] for k in range(1, p)]
    ring = [Send(ranks[r], ranks[(r + 1) % p], chunk) for r in range(p)]
    count = 2 * (p - 1) if kind == "all-reduce" else p - 1
    return [list(ring) for _ in range(count)]


def closed_form_s(
    kind: str,
    ranks: Sequence[str],
    nbytes: float,
    topology: Topology,
    algorithm: str | None = None,
) -> float:
    """The HCCL-table time of a collective with no other traffic: per step, the slowest of
    its sends' α + m·β, summed over steps."""
    algo = algorithm or choose_algorithm(kind, ranks, topology)
    total = 0.0
    for step in steps(kind, ranks, nbytes, algo):
        total += max(topology.level_of(s.src, s.dst).link.send_s(s.nbytes) for s in step)
    return total


def _check(kind: str, ranks: Sequence[str], topology: Topology) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown collective {kind!r}; known: {', '.join(KINDS)}")
    if kind == "send-recv" and len(ranks) != 2:
        raise ConfigError(f"send-recv joins two ranks, got {list(ranks)}")
    if len(ranks) < 2:
        raise ConfigError(f"collective {kind!r} needs at least two ranks, got {list(ranks)}")
    if len(set(ranks)) != len(ranks):
        raise ConfigError(f"collective {kind!r}: a rank is listed twice in {list(ranks)}")
    for r in ranks:
        topology.index(r)


def run_collective(
    env: simpy.Environment,
    lanes: dict[str, simpy.PriorityResource],
    topology: Topology,
    kind: str,
    ranks: Sequence[str],
    nbytes: int,
    *,
    name: str = "",
    algorithm: str | None = None,
    priority: int = 0,
    out: list[CollectiveRecord] | None = None,
) -> Generator[Any, Any, CollectiveRecord]:
    """A SimPy process running one collective on the shared ``lanes`` (created on first use).

    Its record is the process's value, and is appended to ``out`` when given.
    """
    algo = algorithm or choose_algorithm(kind, ranks, topology)
    plan = steps(kind, ranks, nbytes, algo)
    start = env.now
    sends: list[tuple[str, str, str, float, float]] = []

    def send(s: Send, k: int) -> Generator[Any, Any, None]:
        route = topology.lanes(s.src, s.dst)
        link = route[0][1]
        held = []
        # Lanes are taken in name order, so two sends never wait on each other crosswise.
        for lane, _ in sorted(route):
            res = lanes.setdefault(lane, simpy.PriorityResource(env, 1))
            req = res.request(priority=priority)
            yield req
            held.append((res, req))
        began = env.now
        yield env.timeout(link.send_s(s.nbytes))
        for res, req in held:
            res.release(req)
        sends.extend((s.src, s.dst, lane, began, env.now) for lane, _ in route)

    for k, step in enumerate(plan):
        yield env.all_of([env.process(send(s, k)) for s in step])
    record = CollectiveRecord(
        name or kind, kind, algo, tuple(ranks), int(nbytes), start, env.now, tuple(sends)
    )
    if out is not None:
        out.append(record)
    return record


def simulate_collective(
    kind: str,
    ranks: Sequence[str],
    nbytes: int,
    topology: Topology,
    algorithm: str | None = None,
) -> CollectiveRecord:
    """One collective alone on an idle topology, simulated.

    Examples
    --------
    >>> from hetnpu.devices.topology import load_topology
    >>> t = load_topology("atlas-800i-a2")
    >>> r = simulate_collective("all-reduce", t.device_names()[:4], 4 << 20, t)
    >>> r.algorithm, r.duration_s == closed_form_s("all-reduce", t.device_names()[:4], 4 << 20, t)
    ('mesh', True)
    """
    _check(kind, ranks, topology)
    env = simpy.Environment()
    proc = env.process(run_collective(env, {}, topology, kind, ranks, nbytes, algorithm=algorithm))
    env.run()
    return proc.value
