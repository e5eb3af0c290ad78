"""Which links a transfer of the system simulator crosses, and for how long.

Between two NPUs of a topology, the topology's route (one hop: the lanes a send holds at
once); between a device and the host, or a device and another through host memory, one hop per
host link (PCIe), each lane named after its device so eight NPUs have eight host links.

Left out: the host memory's own bandwidth and a switch's internal contention (a switch port
is the only shared part of a switched route).
"""

from __future__ import annotations

from typing import Any

from hetnpu.devices.names import GPU, NPU_DEVICES, base_device, device_index
from hetnpu.errors import ConfigError

__all__ = ["check_topology", "lanes", "send_s"]

_NPU = NPU_DEVICES


def check_topology(plan: Any, topo: Any) -> None:
    """A plan on several NPUs needs a topology, and the topology must have them all.

    Raises
    ------
    ConfigError
        Naming the NPUs, or the device the topology lacks.
    """
    npus = sorted({s.device for s in plan.stages if s.device in _NPU}, key=_device_order)
    addressed = [d for d in npus if device_index(d) is not None]
    if topo is None:
        if len({device_index(d) or 0 for d in npus}) > 1 or plan.collectives:
            raise ConfigError(
                f"the plan runs on several NPUs ({', '.join(npus)}): give a topology "
                "(topology= in Python, --topology of `hetnpu parallel`; `hetnpu topologies` "
                "lists them)"
            )
        return
    for d in addressed:
        topo.index(d)  # names the device the topology lacks


def _device_order(device: str) -> tuple[str, int]:
    return (base_device(device), device_index(device) or 0)


def lanes(src: str, dst: str, spec: Any, gpu: Any, topo: Any) -> list[list[tuple[str, Any]]]:
    """The hops from ``src`` to ``dst``: each a list of (lane, link) held together. Between
    NPUs, the topology's route (one hop); otherwise through host memory, one hop per host
    link."""
    if src == dst:
        return []
    if src in _NPU and dst in _NPU:
        if topo is None:  # two names of one NPU (checked by check_topology)
            return []
        return [list(topo.lanes(src, dst))]
    path = []
    for dev, way in ((src, "d2h"), (dst, "h2d")):
        if dev in _NPU:
            who = dev if device_index(dev) is not None else "npu"
            path.append([(f"{who} link {way} ({spec.host_link.name})", spec.host_link)])
        elif dev == GPU:
            if gpu is None:
                raise ConfigError("a gpu stage needs a GPU spec")
            path.append([(f"gpu link {way} ({gpu.host_link.name})", gpu.host_link)])
    return path


def send_s(link: Any, nbytes: float) -> float:
    send = getattr(link, "send_s", None)  # topology links carry their efficiency
    return send(nbytes) if send is not None else link.latency_s + nbytes / link.bytes_per_s
