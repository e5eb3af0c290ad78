"""``capability``: each device in priority order claims every node it can run; CPU takes the rest.

This is ONNX Runtime's GetCapability partitioning: no costs are consulted, so a supported op
always leaves the CPU, however small it is and however much moving its data costs.
"""

from __future__ import annotations

from hetnpu.scheduler.placement.common import Context, Placement, capability_choice

__all__ = ["place_capability"]


def place_capability(ctx: Context) -> Placement:
    """Assign each non-constant node to its first allowed device in priority order."""
    assignment: dict[str, str] = {}
    fallbacks: dict[str, str] = {}
    for name in ctx.candidates:
        dev, reason = capability_choice(ctx, name)
        assignment[name] = dev
        if reason is not None:
            fallbacks[name] = reason
    return Placement(assignment, fallbacks)
