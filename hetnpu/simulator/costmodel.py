"""NPU op costs from the cycle-level simulator, behind the same
:class:`~hetnpu.scheduler.evaluate.CostModel` interface as the roofline, for the partitioner
(which takes it as an injected cost model: the scheduler never imports the simulator).

The simulator runs the whole graph once (on first use) on the chip; each op the NPU can run
then costs its simulated cycles. Everything else (CPU and GPU ops, ops the simulator cannot
lower, transfers and TransData) comes from :class:`~hetnpu.devices.roofline.RooflineCostModel`.

Left out: an op's simulated time assumes its neighbours also ran on the NPU: an epilogue the
simulator folds into its producer (ReLU after a Conv) costs nothing even when a placement
separates them, and L2 hits depend on the op order of the whole-graph run.

Why the roofline stays the default: simulating costs about a millisecond of wall time per op
(seconds for a 10,000-op graph, against well under a second for all of placement), and on the
shipped light models the two agree on which device each op belongs to far more often than not.
"""

from __future__ import annotations

import weakref
from typing import Any

from hetnpu.devices.names import NPU_DEVICES
from hetnpu.graph.ir import Graph, Node

__all__ = ["SimulatorCostModel"]

_NPU = NPU_DEVICES


class SimulatorCostModel:
    """Simulated NPU op times, roofline for the rest.

    Parameters
    ----------
    npu, cpu, gpu
        Device specs (``gpu`` may be ``None`` if no GPU is listed).
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.

    Examples
    --------
    >>> from hetnpu import models
    >>> from hetnpu.devices.presets import cpu_spec, npu_spec
    >>> from hetnpu.graph import load
    >>> g = load(models.build("mlp", batch=64))
    >>> costs = SimulatorCostModel(npu_spec("ascend910"), cpu_spec())
    >>> fc1 = g.node("/fc1/Gemm")
    >>> costs.cost(g, fc1, "npu") == costs.npu_times(g)["/fc1/Gemm"]
    True
    """

    by_signature = False  # an op's simulated time depends on its place in the run (L2, fusion)

    def __init__(self, npu: Any, cpu: Any, gpu: Any = None, *, precision: str = "fp16") -> None:
        from hetnpu.devices.roofline import RooflineCostModel

        self.roofline = RooflineCostModel(npu, cpu, gpu, precision=precision)
        self.npu = npu
        self.precision = precision
        self._times: weakref.WeakKeyDictionary[Graph, dict[str, float]] = (
            weakref.WeakKeyDictionary()
        )

    def npu_times(self, graph: Graph) -> dict[str, float]:
        """Node name -> simulated seconds on the NPU, for every op the simulator lowered."""
        found = self._times.get(graph)
        if found is None:
            from hetnpu.simulator.chip import simulate

            res = simulate(graph, self.npu, precision=self.precision)
            found = {o.name: o.cycles / res.clock_hz for o in res.ops if o.name in graph.nodes}
            self._times[graph] = found
        return found

    def cost(self, graph: Graph, node: Node, device: str) -> float:
        """Simulated seconds on the NPU when the simulator ran ``node``, else the roofline's."""
        if device in _NPU and not node.is_constant:
            seconds = self.npu_times(graph).get(node.name)
            if seconds is not None:
                return seconds
        return self.roofline.cost(graph, node, device)

    def transfer(self, graph: Graph, tensor: str, src: str, dst: str) -> float:
        """The roofline's link and TransData time."""
        return self.roofline.transfer(graph, tensor, src, dst)

    def link_name(self, src: str, dst: str) -> str:
        return self.roofline.link_name(src, dst)
