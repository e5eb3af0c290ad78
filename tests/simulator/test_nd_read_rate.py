"""MatMul operands are row-major ND: MTE2 converts them to NZ on the way into L1, and rows whose
pitch is not a multiple of 512 B start off the 512-B boundaries where Atlas A2's GM reads run
fastest (ascend-facts §1.5: 32-B-aligned reads reach about 70% of the 512-B-aligned rate).

The penalty is a chip property: the 910B presets carry it, the coupled chips do not.
"""

from __future__ import annotations

import math

import pytest

from hetnpu.devices.presets import load_npu
from hetnpu.fidelity.predict import matmul_model
from hetnpu.graph import load
from hetnpu.simulator.lowering.common import LowerCtx
from hetnpu.simulator.lowering.matmul import lower_matmul, nd_read_fraction
from hetnpu.simulator.tiler import precision_info


def test_fraction_closed_form() -> None:
    spec = load_npu("ascend910b")
    nd, off = spec.mte2_nd2nz_read_fraction, spec.gm_unaligned_read_fraction
    assert off == pytest.approx(0.7)
    # K = 4000 fp16: an 8000-B pitch, 15.6 lines of 512 B; read in part, every row is off.
    assert nd_read_fraction(spec, 8000, True) == pytest.approx(nd * off)
    # An 8192-B pitch is 16 whole lines: only the ND -> NZ conversion costs.
    assert nd_read_fraction(spec, 8192, True) == pytest.approx(nd)
    # A tile of whole rows is one contiguous run, whatever the pitch.
    assert nd_read_fraction(spec, 8000, False) == pytest.approx(nd)


def test_coupled_chips_keep_the_plain_rate() -> None:
    spec = load_npu("ascend310p")
    assert nd_read_fraction(spec, 8000, True) == 1.0


def _loads(m: int, n: int, k: int) -> dict[str, tuple[int, int]]:
    """(cycles, bytes) of the first A and B panel loads of core 0."""
    spec = load_npu("ascend910b")
    graph = load(matmul_model(m, n, k))
    node = graph.node("gemm")
    ctx = LowerCtx(spec, precision_info("fp16"), True, True, spec.ai_cores, spec.vector_cores)
    low = lower_matmul(node, graph, ctx)
    out: dict[str, tuple[int, int]] = {}
    for ins in low.programs[0]:
        if ins.op in ("mte2.load_a", "mte2.load_b") and ins.op not in out:
            out[ins.op] = (ins.cycles, ins.nbytes)
    return out


@pytest.mark.parametrize(("k", "a_off"), [(4000, True), (4096, False)])
def test_panel_copies_run_at_the_reduced_rate(k: int, a_off: bool) -> None:
    spec = load_npu("ascend910b")
    fixed = spec.mte_latency_cycles + spec.gm_latency_cycles
    nd = spec.mte2_nd2nz_read_fraction
    loads = _loads(2048, 4096, k)
    a_cycles, a_bytes = loads["mte2.load_a"]
    b_cycles, b_bytes = loads["mte2.load_b"]
    a_frac = nd * (spec.gm_unaligned_read_fraction if a_off else 1.0)
    assert a_cycles == fixed + math.ceil(a_bytes / (spec.mte2_bytes_per_cycle * a_frac))
    # B's 4096 columns are an 8192-B pitch: aligned, so only the conversion.
    assert b_cycles == fixed + math.ceil(b_bytes / (spec.mte2_bytes_per_cycle * nd))
