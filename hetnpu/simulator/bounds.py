"""The roofline floor of an op on the simulated chip: the fewest cycles its work allows, which
``simulate(check=True)`` holds every op to (an op faster than its floor is a simulator bug).

Left out: per-level floors (L2 against HBM): the bandwidth bound takes the fastest shared bus.
"""

from __future__ import annotations

import math

from hetnpu.devices.rates import device_itemsize, npu_rates
from hetnpu.graph.cost import node_cost
from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.opfamilies import FILL, MOVEMENT, PARTIAL_READ_OPS
from hetnpu.simulator.lowering.common import LowerCtx, Lowered
from hetnpu.simulator.prepare import device_nbytes
from hetnpu.simulator.tiler import Precision

__all__ = ["roofline_bounds"]


def roofline_bounds(
    node: Node, graph: Graph, low: Lowered, ctx: LowerCtx, bus_bpc: float, gm_bytes: int
) -> tuple[int, int]:
    """(compute-bound, bandwidth-bound) cycles of ``node``.

    Both come from the graph and the spec, never from the lowered program (``low`` gives only
    the op's unit group; ``gm_bytes`` is unused), so a lowering that under-counts its work
    cannot lower its own floor. Peaks and element sizes come from :mod:`hetnpu.devices.rates`.

    The compute bound is the node's MACs (from :func:`hetnpu.graph.cost.node_cost`) over every
    Cube at full rate, or, for an op on the Vector unit, the bytes it writes (reads, if it
    writes nothing) over every vector unit's ``vector_bytes_per_cycle`` (a repeat writes at
    most 256 B, ascend-facts §1.2). The bandwidth bound is the bytes it must move over the
    fastest shared bus and through the cores' MTE engines: all its tensors at their size on
    the device (node_cost's count) for ops that read everything; for ops that touch only part
    of an input (Slice, Gather...; node_cost charges them whole inputs) the bytes written plus
    as many read, or the whole input when it is smaller (Pad, Expand, Tile); for fills
    (ConstantOfShape, EyeLike) the bytes written alone.
    """
    spec, prec = ctx.spec, ctx.prec
    rates = npu_rates(spec, prec.name)
    read, written, macs = _device_work(node, graph, prec)
    vec_cores = rates.vector_units
    cores = rates.cube_cores if low.group == "cube" else vec_cores
    # Every byte read passes some core's MTE2 (at best at its L2-hit rate), every byte written
    # its MTE3/FixPipe.
    read_rate = max(spec.mte2_bytes_per_cycle, spec.mte2_l2_bytes_per_cycle or 0)
    write_rate = (
        spec.fixpipe_bytes_per_cycle
        if ctx.split and low.group == "cube"
        else spec.mte3_bytes_per_cycle
    )
    pattern = MOVEMENT.get(node.op_type)
    if pattern == FILL:
        read = 0.0
    elif node.op_type in PARTIAL_READ_OPS:
        # Each byte written was read, unless the whole input is smaller (Pad, Expand, Tile).
        read = min(read, written)
    nbytes = read + written
    engines = 0.0
    if node.index >= 0:
        # The TransData the chip inserts has no ONNX cost split into reads and writes: its
        # floor is its bytes over the bus.
        engines = max(read / (cores * read_rate), written / (cores * write_rate))
    cube = 0
    if low.group == "cube":
        cube = math.ceil(macs / (rates.cube_cores * rates.cube_macs_per_cycle))
    vector = 0
    # Copies and fills skip the Vector unit.
    if low.group == "vector" and node.op_type not in PARTIAL_READ_OPS and pattern != FILL:
        vector = math.ceil((written or read) / (vec_cores * rates.vector_bytes_per_cycle))
    return max(cube, vector), math.floor(max(nbytes / bus_bpc, engines))


def _device_work(node: Node, graph: Graph, prec: Precision) -> tuple[float, float, int]:
    """(bytes read, bytes written, MACs) of ``node`` at its tensors' sizes on the device: a
    synthetic node (the TransData the chip inserts) reads its input and writes its output,
    an ONNX node what :func:`~hetnpu.graph.cost.node_cost` counts."""
    if node.index < 0:
        ins = [t for t in dict.fromkeys(node.inputs) if t in graph.tensors]
        outs = [t for t in node.outputs if t in graph.tensors]
        return (
            float(sum(device_nbytes(graph, t, prec) for t in ins)),
            float(sum(device_nbytes(graph, t, prec) for t in outs)),
            0,
        )
    cost = node_cost(graph, node, itemsize=lambda t: device_itemsize(t.dtype, prec.name))
    return float(cost.bytes_read), float(cost.bytes_written), cost.macs
