"""What every placement strategy starts from: the device list, and who can run each node.

Devices are listed in priority order. ``cpu`` is always available as the fallback; a node
that no listed accelerator can run goes there and is recorded with the accelerators' reasons
(ONNX Runtime's CPU-provider fallback). With ``fallback=False`` such nodes are an error
instead, listing every one of them. A ``cpu`` the user lists explicitly is a device like any
other: a cost-based strategy may keep a node there by choice, which is not a fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hetnpu.devices.names import CPU, DEVICES, NPU_DEVICES, parse_devices
from hetnpu.errors import UnsupportedOpError
from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import CachedCosts
from hetnpu.scheduler.verdicts import verdict

__all__ = [
    "KNOWN_DEVICES",
    "NPU_DEVICES",
    "Context",
    "Placement",
    "make_context",
    "normalize_devices",
]

KNOWN_DEVICES = DEVICES  # the names live in hetnpu.devices.names


@dataclass(frozen=True)
class Placement:
    """A strategy's answer: each non-constant node's device, and why some fell back to CPU."""

    assignment: dict[str, str]
    fallbacks: dict[str, str] = field(default_factory=dict)
    """Node name -> why it runs on the CPU although accelerators were listed."""


@dataclass
class Context:
    """Inputs shared by the strategies, computed once per placement."""

    graph: Graph
    devices: tuple[str, ...]
    """Listed devices in priority order, ``cpu`` appended if it was not listed."""
    listed_cpu: bool
    candidates: dict[str, tuple[str, ...]]
    """Non-constant node -> devices allowed to run it, in priority order."""
    refusals: dict[str, dict[str, str]]
    """Non-constant node -> {device: reason} for the listed devices that cannot run it."""
    costs: CachedCosts | None
    precision: str

    @property
    def accelerators(self) -> tuple[str, ...]:
        return tuple(d for d in self.devices if d != CPU)

    def is_fallback(self, name: str) -> bool:
        """Whether every listed accelerator refuses ``name`` (so the CPU runs it as fallback)."""
        return bool(self.accelerators) and len(self.refusals[name]) == len(self.accelerators)

    def fallback_reason(self, name: str) -> str:
        node = self.graph.nodes[name]
        why = "; ".join(f"{d}: {r}" for d, r in self.refusals[name].items())
        return f"{node.op_type} runs on no listed accelerator ({why})"


def normalize_devices(devices: Sequence[str] | str) -> tuple[tuple[str, ...], bool]:
    """Validate ``devices`` and append the implicit ``cpu``.

    Returns
    -------
    (devices, listed_cpu)
        Deduplicated devices in priority order ending with ``cpu``, and whether the user
        listed ``cpu`` themselves.

    Raises
    ------
    ConfigError
        An unknown device, or an empty list.
    """
    listed = tuple(dict.fromkeys(parse_devices(devices)))
    listed_cpu = CPU in listed
    if not listed_cpu:
        listed = (*listed, CPU)
    return listed, listed_cpu


def make_context(
    graph: Graph,
    devices: Sequence[str] | str,
    *,
    costs: CachedCosts | None,
    fallback: bool,
    precision: str,
    first_only: bool = False,
) -> Context:
    """Ask the listed devices about every non-constant node, and apply the fallback rule.

    With ``first_only`` a node's devices are asked in priority order only until one accepts
    (all a greedy strategy needs); otherwise every listed device is asked.

    Raises
    ------
    ConfigError
        An unknown device.
    UnsupportedOpError
        ``fallback=False`` and some nodes run on no listed accelerator (all of them are
        named), or a node runs on no device at all, CPU included.
    """
    ordered, listed_cpu = normalize_devices(devices)
    accelerators = [d for d in ordered if d != CPU]
    candidates: dict[str, tuple[str, ...]] = {}
    refusals: dict[str, dict[str, str]] = {}
    refused_everywhere: list[str] = []
    no_fallback: list[str] = []
    for node in graph:
        if node.is_constant:
            continue
        ok: list[str] = []
        refused: dict[str, str] = {}
        for dev in ordered:
            if ok and (first_only or (dev == CPU and not listed_cpu)):
                break  # the implicit CPU is only a fallback
            answer = verdict(dev, node.name, graph, precision)
            if answer.supported:
                ok.append(dev)
            else:
                refused[dev] = answer.reason or "not supported"
        refusals[node.name] = {d: r for d, r in refused.items() if d != CPU}
        if CPU in refused and not ok:
            refused_everywhere.append(f"{node.name} ({node.op_type}): {refused[CPU]}")
        elif accelerators and not any(d in ok for d in accelerators) and not fallback:
            why = "; ".join(f"{d}: {r}" for d, r in refusals[node.name].items())
            no_fallback.append(f"{node.name} ({node.op_type}): {why}")
        candidates[node.name] = tuple(ok)
    if refused_everywhere:
        raise UnsupportedOpError(
            f"{len(refused_everywhere)} node(s) run on no device, not even cpu: "
            + _listing(refused_everywhere)
        )
    if no_fallback:
        raise UnsupportedOpError(
            f"fallback is off and {len(no_fallback)} node(s) run on none of "
            f"{', '.join(accelerators)}: " + _listing(no_fallback)
        )
    return Context(graph, ordered, listed_cpu, candidates, refusals, costs, precision)


def _listing(items: list[str]) -> str:
    # Every node, however many: the user needs the whole list to decide what to change.
    return " | ".join(items)


def capability_choice(ctx: Context, name: str) -> tuple[str, str | None]:
    """The first allowed device of ``name`` in priority order, with the fallback reason if that
    is the CPU for lack of an accelerator."""
    dev = ctx.candidates[name][0]
    return dev, ctx.fallback_reason(name) if dev == CPU and ctx.is_fallback(name) else None


def cpu_fallbacks(ctx: Context, assignment: dict[str, str]) -> dict[str, str]:
    """Fallback reasons of the nodes ``assignment`` puts on CPU for lack of an accelerator."""
    return {
        name: ctx.fallback_reason(name)
        for name, dev in assignment.items()
        if dev == CPU and ctx.is_fallback(name)
    }
