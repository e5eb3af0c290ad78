"""NPU op costs from the cycle-level simulator, behind the same
:class:`~hetnpu.scheduler.evaluate.CostModel` interface as the roofline.

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

from hetnpu.graph.ir import Graph, Node

__all__ = ["SimulatorCostModel"]

_NPU = ("npu", "sim-npu")


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
    >>> costs = SimulatorCostModel(chips.load("ascend310"), cpu_spec)          # doctest: +SKIP
    >>> plan = partition(g, ["npu", "cpu"], strategy="heft", cost_model=costs)  # doctest: +SKIP
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
            from hetnpu.simulator import simulate

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
