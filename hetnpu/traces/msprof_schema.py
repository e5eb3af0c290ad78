"""The column names of msprof's and torch_npu's operator tables, with where each list comes from.

Sources (the test ``tests/traces/test_msprof.py`` checks the lists against them):

- [MSPROF-REF] msprof's own "Profile Data File Reference" (``docs/en/user_guide/
  profile_data_file_references.md`` of the MindStudio msprof sources, mirrored on GitHub as
  kali20gakki/msprof at 66c00af8), sections op_summary and op_statistic; also CANN 8.5's
  atlasprofiling_16_0067 page (ascend-facts [MSPROF-OPS]).
- [KD-A2] a real torch_npu ``kernel_details.csv`` of an Atlas A2 chip (20 AI cores) with
  PipeUtilization metrics: Ascend mstt's ``profiler/msprof_analyze/test/ut/advisor/
  compute_advice/data/kernel_details.csv`` (GitHub mirror xiaobingling93-pixel/Ascend-mstt;
  fixture ``kernel_details_a2.csv``).
- [OPS-COUPLED] a real msprof ``op_summary`` row of a coupled-core chip with PipeUtilization
  metrics and ``memory_bound``: Ascend mskpp's ``test/cases/test_statistic_info.py`` (GitHub
  mirror xiaobingling93-pixel/Ascend-mskpp; fixture ``op_summary_coupled.csv``).
- [OPSTAT] op_statistic's header as msprof writes it (MSPROF-REF table 1; the same header in
  msprof's system test ``test/st/src/l0_test_ascend_msprof_matmul_basic_api.py``).

Units are in the names: ``(us)`` microseconds, ``_ratio`` a fraction of the op's cycles on that
core kind, ``(%)`` percent.
"""

from __future__ import annotations

__all__ = [
    "A2_PIPE",
    "COMMON",
    "COUPLED_PIPE",
    "KERNEL_DETAILS_RENAMES",
    "OP_STATISTIC",
    "RATIO_UNITS",
    "core_kind",
    "task_type",
]

COMMON = (
    "Device_id",
    "Model ID",
    "Task ID",
    "Stream ID",
    "Op Name",
    "OP Type",
    "OP State",
    "Task Type",
    "Task Start Time(us)",
    "Task Duration(us)",
    "Task Wait Time(us)",
    "Block Dim",
    "Mix Block Dim",
    "HF32 Eligible",
    "Input Shapes",
    "Input Data Types",
    "Input Formats",
    "Output Shapes",
    "Output Data Types",
    "Output Formats",
    "Context ID",
)
"""op_summary's common fields in msprof's order [MSPROF-REF table 1]; ``Block Dim`` and
``Mix Block Dim`` as in [KD-A2] (CANN 8.5 renames them ``Block Num``/``Mix Block Num``; the
reader takes either)."""

A2_PIPE = (
    "aicore_time(us)",
    "aic_total_cycles",
    "aic_mac_time(us)",
    "aic_mac_ratio",
    "aic_scalar_time(us)",
    "aic_scalar_ratio",
    "aic_mte1_time(us)",
    "aic_mte1_ratio",
    "aic_mte2_time(us)",
    "aic_mte2_ratio",
    "aic_fixpipe_time(us)",
    "aic_fixpipe_ratio",
    "aic_icache_miss_rate",
    "aiv_time(us)",
    "aiv_total_cycles",
    "aiv_vec_time(us)",
    "aiv_vec_ratio",
    "aiv_scalar_time(us)",
    "aiv_scalar_ratio",
    "aiv_mte2_time(us)",
    "aiv_mte2_ratio",
    "aiv_mte3_time(us)",
    "aiv_mte3_ratio",
    "aiv_icache_miss_rate",
    "cube_utilization(%)",
)
"""PipeUtilization fields of a chip with separate Cube (AIC) and Vector (AIV) cores, in the
order of [KD-A2]; msprof leaves out ``memory_bound`` on these chips [MSPROF-REF]."""

COUPLED_PIPE = (
    "aicore_time(us)",
    "total_cycles",
    "vec_time(us)",
    "vec_ratio",
    "mac_time(us)",
    "mac_ratio",
    "scalar_time(us)",
    "scalar_ratio",
    "mte1_time(us)",
    "mte1_ratio",
    "mte2_time(us)",
    "mte2_ratio",
    "mte3_time(us)",
    "mte3_ratio",
    "icache_miss_rate",
    "memory_bound",
)
"""PipeUtilization fields of a chip whose AI cores hold both Cube and Vector, in the order of
[OPS-COUPLED]; ``memory_bound = mte2_ratio / max(mac_ratio, vec_ratio)`` [MSPROF-REF]."""

RATIO_UNITS = {
    "mac": "CUBE",
    "vec": "VECTOR",
    "scalar": "SCALAR",
    "mte1": "MTE1",
    "mte2": "MTE2",
    "mte3": "MTE3",
    "fixpipe": "FIXPIPE",
}
"""PipeUtilization's pipe names → the simulator's unit (thread) names (ascend-facts §1.10)."""

OP_STATISTIC = (
    "Device_id",
    "OP Type",
    "Core Type",
    "Count",
    "Total Time(us)",
    "Min Time(us)",
    "Avg Time(us)",
    "Max Time(us)",
    "Ratio(%)",
)
"""op_statistic's fields [OPSTAT]."""

KERNEL_DETAILS_RENAMES = {
    "Name": "Op Name",
    "Type": "OP Type",
    "Accelerator Core": "Task Type",
    "Start Time(us)": "Task Start Time(us)",
    "Duration(us)": "Task Duration(us)",
    "Wait Time(us)": "Task Wait Time(us)",
    "Block Num": "Block Dim",
    "Mix Block Num": "Mix Block Dim",
    "Task Start Time": "Task Start Time(us)",
}
"""torch_npu's kernel_details names (and CANN 8.5's) → op_summary's: torch_npu derives
kernel_details from op_summary by this renaming (its ``_generate_kernel_details`` header map,
Ascend/pytorch and msprof-analyze)."""


def core_kind(core: str) -> str:
    """``"aic"``, ``"aiv"`` or ``"core"`` (coupled) from a core's or lane's name."""
    return core.rsplit(" ", 1)[-1].rstrip("0123456789")


def task_type(kinds: set[str]) -> str:
    """msprof's Task Type of a task that ran on cores of ``kinds`` [MSPROF-REF table 1]:
    Vector cores only → ``AI_VECTOR_CORE``; Cube and Vector cores of a separated chip →
    ``MIX_AIC`` (as [KD-A2] records FlashAttention); else ``AI_CORE``."""
    if kinds == {"aiv"}:
        return "AI_VECTOR_CORE"
    if {"aic", "aiv"} <= kinds:
        return "MIX_AIC"
    return "AI_CORE"
