"""The spec fields the simulator reads, as the key of its caches: two specs equal on these
simulate alike, whatever else (names of sources, capacities it never reads) differs."""

from __future__ import annotations

from typing import Any

__all__ = ["chip_key", "lowering_key"]

_SPEC_FIELDS = (
    "name",
    "architecture",
    "ai_cores",
    "vector_cores",
    "clock_hz",
    "cube_mkn_fp16",
    "cube_mkn_int8",
    "cube_mkn_fp32",
    "cube_latency_cycles",
    "vector_bytes_per_cycle",
    "vector_latency_cycles",
    "scalar_issue_cycles",
    "flag_ids",
    "l0a_bytes",
    "l0b_bytes",
    "l0c_bytes",
    "l1_bytes",
    "ub_bytes",
    "mte2_bytes_per_cycle",
    "mte2_l2_bytes_per_cycle",
    "mte1_l0a_bytes_per_cycle",
    "mte1_l0b_bytes_per_cycle",
    "mte3_bytes_per_cycle",
    "fixpipe_bytes_per_cycle",
    "l1_to_ub_bytes_per_cycle",
    "gm_unaligned_read_fraction",
    "mte2_nd2nz_read_fraction",
    "transdata_bytes_per_cycle",
    "mte_latency_cycles",
    "gm_latency_cycles",
    "task_launch_s",
    "model_execute_s",
    "stream_switch_s",
    "l2_bytes",
    "l2_kind",
    "l2_bytes_per_s",
    "hbm_bytes_per_s",
)


def chip_key(spec: Any) -> tuple[Any, ...]:
    """The spec fields the simulator reads, as a hashable cache key."""
    return tuple(getattr(spec, f) for f in _SPEC_FIELDS)


_RUN_ONLY = frozenset(
    {"l2_bytes", "l2_kind", "task_launch_s", "model_execute_s", "stream_switch_s"}
)
"""Fields only the run reads (L2 residency, the launch before each kernel, control tasks; the
result's host-timed latency reads ``model_execute_s``, so a cached result keys on it), never
an op's lowering: specs that differ in them share their lowered programs (an LLM prompt pass's
L2 cut to its share of the batch, a sweep over launch cost). tests/simulator/test_spec_key.py
checks that no lowering module reads them."""


def lowering_key(spec: Any) -> tuple[Any, ...]:
    """The spec fields an op's lowering reads, as the key of the lowering cache."""
    return tuple(getattr(spec, f) for f in _SPEC_FIELDS if f not in _RUN_ONLY)
