"""Collectives on the topologies: simulated time against the HCCL cost table (α + m·β per
step), written out here independently of the code's own step lists."""

from __future__ import annotations

import pytest

from hetnpu.devices.topology import load_topology
from hetnpu.errors import ConfigError, HetnpuError
from hetnpu.simulator.collectives import closed_form_s, simulate_collective

N = 3 * 2**20 + 48  # bytes; not a multiple of p, so chunks are fractional


def _ab(link):
    return link.latency_s, 1.0 / (link.bytes_per_s * link.efficiency)


def _hccl_table(kind: str, algorithm: str, p: int, n: float, alpha: float, beta: float) -> float:
    """cann-hccl docs/Ring.md and docs/Mesh.md (γ left out); pairwise all-to-all: p-1 steps."""
    step = alpha + n / p * beta
    return {
        ("all-reduce", "ring"): 2 * (p - 1) * step,
        ("all-gather", "ring"): (p - 1) * step,
        ("reduce-scatter", "ring"): (p - 1) * step,
        ("all-reduce", "mesh"): 2 * step,
        ("all-gather", "mesh"): step,
        ("reduce-scatter", "mesh"): step,
        ("all-to-all", "mesh"): step,
        ("all-to-all", "pairwise"): (p - 1) * step,
        ("send-recv", "direct"): alpha + n * beta,
    }[(kind, algorithm)]


CASES = [
    (kind, algo)
    for kind, algos in {
        "all-reduce": ("ring", "mesh"),
        "all-gather": ("ring", "mesh"),
        "reduce-scatter": ("ring", "mesh"),
        "all-to-all": ("pairwise", "mesh"),
    }.items()
    for algo in algos
]


@pytest.mark.parametrize(("kind", "algorithm"), CASES)
@pytest.mark.parametrize("p", [2, 4, 8])
def test_full_mesh_server_matches_the_hccl_table(kind: str, algorithm: str, p: int) -> None:
    topo = load_topology("atlas-800i-a2")
    ranks = topo.device_names()[:p]
    alpha, beta = _ab(topo.levels[0].link)
    rec = simulate_collective(kind, ranks, N, topo, algorithm)
    expected = _hccl_table(kind, algorithm, p, N, alpha, beta)
    assert rec.duration_s == pytest.approx(expected, rel=1e-12)
    assert rec.duration_s == closed_form_s(kind, ranks, N, topo, algorithm)
    # Each pair link carries one chunk per step: n/p per send.
    assert all(end - start == pytest.approx(alpha + N / p * beta) for *_, start, end in rec.sends)


@pytest.mark.parametrize("kind", ["all-reduce", "all-gather", "reduce-scatter"])
def test_ring_across_two_servers_takes_the_roce_hop_each_step(kind: str) -> None:
    topo = load_topology("atlas-800i-a2-x2")
    ranks = topo.device_names()  # 16 ranks, the ring crosses RoCE at npu:7->8 and npu:15->0
    roce = topo.levels[1].link
    alpha, beta = _ab(roce)
    rec = simulate_collective(kind, ranks, N, topo)
    assert rec.algorithm == "ring"
    assert rec.duration_s == pytest.approx(_hccl_table(kind, "ring", 16, N, alpha, beta), rel=1e-12)
    assert rec.duration_s == closed_form_s(kind, ranks, N, topo)
    lanes = {lane for *_, lane, _, _ in rec.sends}
    assert "RoCE npu:7 tx" in lanes and "RoCE npu:8 rx" in lanes


def test_a3_dies_use_sio_in_a_package_and_the_hccs_switch_beyond() -> None:
    topo = load_topology("atlas-800-a3")
    sio, hccs = topo.levels[0].link, topo.levels[1].link
    pair = simulate_collective("all-reduce", ["npu:0", "npu:1"], N, topo)
    assert pair.algorithm == "mesh"
    assert pair.duration_s == pytest.approx(_hccl_table("all-reduce", "mesh", 2, N, *_ab(sio)))
    ranks = topo.device_names()[:8]
    rec = simulate_collective("all-to-all", ranks, N, topo)
    assert rec.algorithm == "pairwise"  # a switch is no full mesh
    # Pairwise steps always include a send between packages, so the HCCS port dominates.
    assert rec.duration_s == pytest.approx(_hccl_table("all-to-all", "pairwise", 8, N, *_ab(hccs)))
    # A mesh all-to-all on a switch queues p-1 sends on each tx port: p-1 sends' time.
    mesh = simulate_collective("all-to-all", ranks, N, topo, "mesh")
    slowest = max(hccs.send_s(N / 8), sio.send_s(N / 8))
    assert mesh.duration_s > 6 * slowest


def test_send_recv_is_one_send_of_the_whole_tensor() -> None:
    topo = load_topology("atlas-800i-a2")
    rec = simulate_collective("send-recv", ["npu:2", "npu:5"], N, topo)
    alpha, beta = _ab(topo.levels[0].link)
    assert rec.duration_s == pytest.approx(alpha + N * beta)
    assert [s[:3] for s in rec.sends] == [("npu:2", "npu:5", "HCCS npu:2->npu:5")]


@pytest.mark.parametrize(
    ("ranks", "kind", "algorithm", "message"),
    [
        (["npu:0", "npu:8"], "all-reduce", None, "no device 'npu:8'"),
        (["npu:0", "gpu"], "all-reduce", None, "no addressed NPU"),
        (["npu:0", "npu:0"], "all-gather", None, "listed twice"),
        (["npu:0", "npu:1"], "broadcast", None, "unknown collective"),
        (["npu:0", "npu:1"], "all-reduce", "pairwise", "no algorithm 'pairwise'"),
    ],
)
def test_bad_collectives_name_the_problem(ranks, kind, algorithm, message) -> None:
    topo = load_topology("atlas-800i-a2")
    with pytest.raises(ConfigError, match=message):
        simulate_collective(kind, ranks, N, topo, algorithm)
    assert issubclass(ConfigError, HetnpuError)
