"""An analytical cost model: each op takes the longer of its compute and its memory time on a
device's roofline, plus a fixed per-op overhead; each transfer takes a link's latency plus its
bytes over the link's bandwidth, plus a TransData conversion where a tensor enters or leaves
the NPU's private layouts.

It is the stand-in for measured or simulated costs behind the same interface
(:class:`hetnpu.scheduler.evaluate.CostModel`), so placement can run anywhere and fast.

Left out: caches (every byte an op reads or writes goes to main memory), fusion, overlap of an
op's compute with its memory traffic beyond the max(), and contention between ops.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from hetnpu.devices.names import NPU_DEVICES
from hetnpu.errors import ConfigError
from hetnpu.graph.ir import Graph, Node

if TYPE_CHECKING:
    from hetnpu.devices.spec import CpuSpec, GpuSpec, LinkSpec, NpuSpec
    from hetnpu.graph.ir import Tensor

__all__ = ["RooflineCostModel", "device_layouts"]

_NPU = NPU_DEVICES
_CUBE_KINDS = frozenset({"conv", "matmul"})
_ITEMSIZE = {"fp16": 2, "fp32": 4, "int8": 1}
"""Bytes per element the NPU computes in, by precision: ATC casts fp32 models to fp16 by
default, so an NPU op reads and writes half the bytes the fp32 graph says."""


_FLOATS = frozenset({"float32", "float16", "bfloat16", "float64"})


def device_layouts(tensor: Tensor) -> tuple[str, str] | None:
    """(outside, inside) layouts of ``tensor`` at an NPU boundary; ``None`` if it stays ND.

    4-D activations are NC1HWC0 inside the NPU (ascend-facts §3.2), other matrices FRACTAL_NZ
    (§3.4); vectors, scalars, integer tensors and tensors of unknown rank keep ND.
    """
    if tensor.dtype not in _FLOATS or tensor.shape is None or len(tensor.shape) < 2:
        return None
    return ("NCHW", "NC1HWC0") if len(tensor.shape) == 4 else ("ND", "FRACTAL_NZ")


class RooflineCostModel:
    """Roofline op costs for CPU, GPU and NPU, and link costs between them.

    Parameters
    ----------
    npu
        The chip (``hetnpu.chips.load("ascend910")``).
    cpu
        The host CPU; it runs the model's own dtype (fp32).
    gpu
        The GPU, if one is listed.
    precision
        What the NPU computes in: ``"fp16"`` (ATC's default), ``"fp32"`` or ``"int8"``.

    Examples
    --------
    >>> costs = RooflineCostModel(chips.load("ascend910"), cpu_spec)        # doctest: +SKIP
    >>> conv = g.node("/conv1/Conv")                                      # doctest: +SKIP
    >>> costs.cost(g, conv, "npu") < costs.cost(g, conv, "cpu")           # doctest: +SKIP
    True
    """

    by_signature = True
    """Costs depend only on a node's op, attributes and tensor shapes, so
    :class:`~hetnpu.scheduler.evaluate.CachedCosts` may share them between such nodes."""

    def __init__(
        self, npu: NpuSpec, cpu: CpuSpec, gpu: GpuSpec | None = None, *, precision: str = "fp16"
    ) -> None:
        if precision not in _ITEMSIZE:
            raise ConfigError(f"precision {precision!r}: choose one of {', '.join(_ITEMSIZE)}")
        self.npu = npu
        self.cpu = cpu
        self.gpu = gpu
        self.precision = precision
        self._work: weakref.WeakKeyDictionary[Graph, dict[str, Any]] = weakref.WeakKeyDictionary()
        # Transfers depend on the tensor only through its shape and dtype, and graphs repeat
        # a handful of those.
        self._moves: dict[tuple[Any, str, str, str], float] = {}

    # -- ops ---------------------------------------------------------------------------------

    def cost(self, graph: Graph, node: Node, device: str) -> float:
        """Seconds ``device`` takes to run ``node``; constant-folded nodes take none.

        Raises
        ------
        ConfigError
            An unknown device, or ``gpu`` without a GPU spec.
        """
        if node.is_constant:
            return 0.0
        work = self._node_cost(graph, node)
        moved = work.bytes_read + work.bytes_written
        if device in _NPU:
            npu = self.npu
            scale = _ITEMSIZE[self.precision] / 4
            if work.kind in _CUBE_KINDS:
                peak = npu.peak_flops(self.precision)
            else:
                # Vector ops run on the vector units: AIV cores on split chips, each AI core's
                # own vector unit on coupled ones; one 256-B repeat per cycle each (§1.2).
                units = npu.vector_cores if npu.architecture == "split" else npu.ai_cores
                lanes = npu.vector_bytes_per_cycle / _ITEMSIZE[self.precision]
                peak = units * lanes * npu.clock_hz
            # Fixed cost: the first GM read of an op must land before any unit can start.
            overhead = (npu.gm_latency_cycles + npu.mte_latency_cycles) / npu.clock_hz
            return max(work.flops / peak, moved * scale / npu.hbm_bytes_per_s) + overhead
        if device == "cpu":
            spec: Any = self.cpu
        elif device == "gpu":
            if self.gpu is None:
                raise ConfigError("device 'gpu' needs a GPU spec in the cost model")
            spec = self.gpu
        else:
            raise ConfigError(f"unknown device {device!r}; known devices: npu, sim-npu, gpu, cpu")
        return (
            max(work.flops / spec.peak_fp32_flops, moved / spec.mem_bytes_per_s)
            + spec.launch_overhead_s
        )

    def _node_cost(self, graph: Graph, node: Node) -> Any:
        from hetnpu.graph.cost import node_cost

        # Keyed by the graph object itself (weakly), not id(graph): a graph's id is reused once
        # it is collected, and a long-lived model would hand the next graph stale costs.
        per_graph = self._work.get(graph)
        if per_graph is None:
            per_graph = self._work[graph] = {}
        work = per_graph.get(node.name)
        if work is None:
            work = per_graph[node.name] = node_cost(graph, node)
        return work

    # -- transfers ---------------------------------------------------------------------------

    def links(self, src: str, dst: str) -> list[LinkSpec]:
        """Links a tensor crosses from ``src`` to ``dst``: NPU and GPU reach each other through
        host memory, so that path takes both host links."""
        if src == dst or (src in _NPU and dst in _NPU):
            return []
        path = []
        for dev in (src, dst):
            if dev in _NPU:
                path.append(self.npu.host_link)
            elif dev == "gpu":
                if self.gpu is None:
                    raise ConfigError("device 'gpu' needs a GPU spec in the cost model")
                path.append(self.gpu.host_link)
        return path

    def link_name(self, src: str, dst: str) -> str:
        """Human-readable name of the path from ``src`` to ``dst`` (``"local"`` if none)."""
        return " + ".join(link.name for link in self.links(src, dst)) or "local"

    def transfer(self, graph: Graph, tensor: str, src: str, dst: str) -> float:
        """Seconds to move tensor ``tensor`` from ``src`` to ``dst``: per link, its latency plus
        bytes over bandwidth; plus the TransData into or out of the NPU's layout."""
        if src == dst:
            return 0.0
        t = graph.tensors[tensor]
        if t.is_constant:
            return 0.0
        key = (t.shape, t.dtype, src, dst)
        seconds = self._moves.get(key)
        if seconds is None:
            nbytes = t.nbytes or 0
            seconds = sum(
                link.latency_s + nbytes / link.bytes_per_s for link in self.links(src, dst)
            )
            if (src in _NPU) != (dst in _NPU):
                seconds += self.transdata(graph, tensor, to_npu=dst in _NPU)
            self._moves[key] = seconds
        return seconds

    def transdata(self, graph: Graph, tensor: str, *, to_npu: bool) -> float:
        """Seconds of the NPU's layout conversion of ``tensor``: a memory-bound op moving the
        bytes it reads plus those it writes through HBM; 0 for tensors that stay ND."""
        from hetnpu.devices.layouts import transdata_bytes

        t = graph.tensors[tensor]
        layouts = device_layouts(t)
        if layouts is None or not t.is_static:
            return 0.0
        outside, inside = layouts
        src, dst = (outside, inside) if to_npu else (inside, outside)
        dtype = "float16" if self.precision == "fp16" else t.dtype
        nbytes = transdata_bytes(tuple(t.shape), src, dst, dtype)  # type: ignore[arg-type]
        overhead = (self.npu.gm_latency_cycles + self.npu.mte_latency_cycles) / self.npu.clock_hz
        return nbytes / self.npu.hbm_bytes_per_s + overhead
