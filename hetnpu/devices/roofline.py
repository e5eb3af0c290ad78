"""An analytical cost model: each op takes the longer of its compute and its memory time on a
device's roofline, plus a fixed per-op overhead; each transfer takes a link's latency plus its
bytes over the link's bandwidth, plus a TransData conversion where a tensor enters or leaves
the NPU's private layouts. On the NPU an op's bytes are its tensors at their size there, and
its peaks those of the precision mode (:mod:`hetnpu.devices.rates`): at fp16 a float tensor
takes 2 bytes per element whatever its ONNX dtype.

It is the stand-in for measured or simulated costs behind the same interface
(:class:`hetnpu.scheduler.evaluate.CostModel`), so placement can run anywhere and fast.

Left out: caches (every byte an op reads or writes goes to main memory), fusion, overlap of an
op's compute with its memory traffic beyond the max(), and contention between ops.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from hetnpu.devices.names import CPU, GPU, NPU, NPU_DEVICES, device_kind
from hetnpu.devices.rates import (
    NpuRates,
    check_precision,
    device_dtype,
    device_itemsize,
    npu_rates,
    vector_units,
)
from hetnpu.errors import ConfigError
from hetnpu.graph.ir import Graph, Node

if TYPE_CHECKING:
    from hetnpu.devices.spec import CpuSpec, GpuSpec, LinkSpec, NpuSpec
    from hetnpu.graph.ir import Tensor

__all__ = ["RooflineCostModel", "device_layouts"]

_NPU = NPU_DEVICES
_CUBE_KINDS = frozenset({"conv", "matmul"})


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
        check_precision(precision)
        self.npu = npu
        self.cpu = cpu
        self.gpu = gpu
        self.precision = precision
        self._work: weakref.WeakKeyDictionary[Graph, dict[str, Any]] = weakref.WeakKeyDictionary()
        # Bytes a node moves on the NPU, by (node, precision): asked for only by NPU costs.
        self._npu_bytes: weakref.WeakKeyDictionary[Graph, dict[tuple[str, str], int]] = (
            weakref.WeakKeyDictionary()
        )
        # Transfers depend on the tensor only through its shape and dtype, and graphs repeat
        # a handful of those.
        self._moves: dict[tuple[Any, str, str, str], float] = {}
        self._rates_spec, self._rates_memo = npu, npu_rates(npu, precision)

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
        kind = device_kind(device)
        if kind == NPU:
            npu = self.npu
            rates = self._rates()
            peak = rates.cube_flops_per_s if work.kind in _CUBE_KINDS else rates.vector_ops_per_s
            moved = self._npu_moved(graph, node)
            # Fixed cost: the first GM read of an op must land before any unit can start.
            overhead = (npu.gm_latency_cycles + npu.mte_latency_cycles) / npu.clock_hz
            return max(work.flops / peak, moved / rates.hbm_bytes_per_s) + overhead
        moved = work.bytes_read + work.bytes_written
        if kind == CPU:
            spec: Any = self.cpu
        else:
            if self.gpu is None:
                raise ConfigError("device 'gpu' needs a GPU spec in the cost model")
            spec = self.gpu
        return (
            max(work.flops / spec.peak_fp32_flops, moved / spec.mem_bytes_per_s)
            + spec.launch_overhead_s
        )

    def _rates(self) -> NpuRates:
        # ``npu`` and ``precision`` are plain attributes: follow them if they are swapped.
        if self._rates_spec is not self.npu or self._rates_memo.precision != self.precision:
            self._rates_spec, self._rates_memo = self.npu, npu_rates(self.npu, self.precision)
        return self._rates_memo

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

    def _npu_moved(self, graph: Graph, node: Node) -> int:
        """Bytes ``node`` reads and writes on the NPU: node_cost's tensors at their NPU size."""
        from hetnpu.graph.cost import node_cost

        per_graph = self._npu_bytes.get(graph)
        if per_graph is None:
            per_graph = self._npu_bytes[graph] = {}
        precision = self.precision
        moved = per_graph.get((node.name, precision))
        if moved is None:
            work = node_cost(graph, node, itemsize=lambda t: device_itemsize(t.dtype, precision))
            moved = per_graph[node.name, precision] = work.bytes_read + work.bytes_written
        return moved

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
            elif dev == GPU:
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
        bytes it reads plus those it writes through HBM, or, between NCHW and NC1HWC0 of more
        than 4 channels on a chip with ``transdata_bytes_per_cycle``, the NC1HWC0 bytes at that
        rate on every core when slower (as the simulator times it); 0 for tensors that stay
        ND."""
        from hetnpu.devices.layouts import SMALL_CHANNEL, padded_nbytes, transdata_bytes

        t = graph.tensors[tensor]
        layouts = device_layouts(t)
        if layouts is None or not t.is_static:
            return 0.0
        outside, inside = layouts
        src, dst = (outside, inside) if to_npu else (inside, outside)
        dtype = device_dtype(t.dtype, self.precision)
        nbytes = transdata_bytes(tuple(t.shape), src, dst, dtype)  # type: ignore[arg-type]
        overhead = (self.npu.gm_latency_cycles + self.npu.mte_latency_cycles) / self.npu.clock_hz
        seconds = nbytes / self.npu.hbm_bytes_per_s
        rate = self.npu.transdata_bytes_per_cycle
        if rate and inside == "NC1HWC0" and t.shape[1] > SMALL_CHANNEL:
            five_hd = padded_nbytes(tuple(t.shape), "NC1HWC0", dtype)
            seconds = max(seconds, five_hd / (rate * vector_units(self.npu) * self.npu.clock_hz))
        return seconds + overhead
