"""``affinity``: the user pins nodes to devices by op type, node name or glob (OpenVINO
HETERO's affinities); unpinned nodes are placed by capability. Pins also bind the other
strategies: a pinned node's only allowed device is its pin.

Entries apply in order and later ones win, so ``{"*": "npu", "Softmax": "cpu"}`` reads as
"everything on the NPU except softmaxes". A pin a device cannot honour is an error naming the
node, its op and the device's reason; it never silently falls back.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from hetnpu.errors import ConfigError, UnsupportedOpError
from hetnpu.scheduler.placement.capability import place_capability
from hetnpu.scheduler.placement.common import Context, Placement
from hetnpu.scheduler.verdicts import verdict

__all__ = ["AffinitySpec", "apply_pins", "parse_affinity", "pins", "place_affinity"]

AffinitySpec = Mapping[str, str] | Iterable[tuple[str, str]]
_GLOB_CHARS = frozenset("*?[")


def parse_affinity(items: Iterable[str]) -> list[tuple[str, str]]:
    """Parse CLI items ``PATTERN=DEVICE`` (the last ``=`` splits, so names may contain ``=``).

    Raises
    ------
    ConfigError
        An item without ``=`` or with an empty side.
    """
    out = []
    for item in items:
        pattern, sep, device = item.rpartition("=")
        if not sep or not pattern or not device.strip():
            raise ConfigError(f"--affinity {item!r}: expected PATTERN=DEVICE, e.g. 'Softmax=cpu'")
        out.append((pattern.strip(), device.strip()))
    return out


def _entries(affinity: AffinitySpec) -> list[tuple[str, str]]:
    return list(affinity.items()) if isinstance(affinity, Mapping) else list(affinity)


def pins(ctx: Context, affinity: AffinitySpec) -> dict[str, tuple[str, str]]:
    """Node name -> (device, pattern) of the last entry matching it; constant nodes are skipped.

    Raises
    ------
    ConfigError
        An entry names a device that is not in the device list, or matches no node.
    """
    result: dict[str, tuple[str, str]] = {}
    names = list(ctx.candidates)
    for pattern, device in _entries(affinity):
        if device not in ctx.devices:
            raise ConfigError(
                f"affinity {pattern!r}={device!r}: device {device!r} is not among the devices "
                f"{', '.join(ctx.devices)}"
            )
        is_glob = bool(_GLOB_CHARS & set(pattern))
        matched = [
            n
            for n in names
            if ctx.graph.nodes[n].op_type == pattern
            or n == pattern
            or (is_glob and fnmatch.fnmatchcase(n, pattern))
        ]
        if not matched:
            raise ConfigError(
                f"affinity {pattern!r}={device!r} matches no node (by op type, node name or glob)"
            )
        for n in matched:
            result[n] = (device, pattern)
    return result


def apply_pins(ctx: Context, affinity: AffinitySpec) -> None:
    """Restrict each pinned node's allowed devices to its pin, in place.

    Raises
    ------
    ConfigError
        See :func:`pins`.
    UnsupportedOpError
        A node is pinned to a device that cannot run it (every such node is named).
    """
    pinned = pins(ctx, affinity)
    bad = []
    for name, (device, pattern) in pinned.items():
        if device not in ctx.candidates[name]:
            node = ctx.graph.nodes[name]
            answer = verdict(device, name, ctx.graph, ctx.precision)
            if not answer.supported:
                bad.append(
                    f"node {name!r} ({node.op_type}) is pinned to {device} by {pattern!r}, "
                    f"which cannot run it: {answer.reason or 'not supported'}"
                )
                continue
        ctx.candidates[name] = (device,)
    if bad:
        raise UnsupportedOpError("affinity cannot be honoured: " + " | ".join(bad))


def place_affinity(ctx: Context) -> Placement:
    """Pinned nodes on their pinned device (see :func:`apply_pins`), the others by capability."""
    return place_capability(ctx)
