"""ATC's precision modes: what the NPU computes each op's float tensors in.

hetnpu's short names, :data:`PRECISIONS`, are what sessions, sweeps and the simulator take:
``fp16`` is ATC's ``force_fp16``, ``fp32`` its ``must_keep_origin_dtype`` and ``int8`` a model
quantised by AMCT (Cube ops in int8, the rest in float16). :data:`ATC_MODES` are ATC's own
``--precision_mode`` values, which the simulated NPU's numerics also take, op by op.

What each mode does, from ATC's ``--precision_mode`` page (CANN 8.0.0,
https://www.hiascend.com/document/detail/en/canncommercial/800/devaids/atc/atlasatcparam_16_0067.html;
CANN 6.0.1, .../zh/canncommercial/601/devtools/auxiliarydevtool/aoepar_16_044.html):

- ``force_fp16``: an op with both float16 and float32 kernels computes in float16.
- ``allow_fp32_to_fp16``: Cube (matrix) ops compute in float16; Vector ops keep float32 when
  they have a float32 kernel.
- ``force_fp32`` (the same as ``cube_fp16in_fp32out``): Cube ops take float16 inputs and write
  float32 (their first choice of kernel); Vector ops compute in float32.
- ``must_keep_origin_dtype``: every op keeps the model's dtype.
- ``allow_mix_precision`` (the same as ``allow_mix_precision_fp16``): each float32 op follows its
  ``precision_reduce`` flag in the SoC's ops-info file: trustlist (``true``) ops compute in
  float16, blocklist (``false``) ops keep float32, graylist ops (no flag) follow the op upstream
  of them, or keep their own dtype when there is none. ``--modify_mixlist`` edits the lists
  (https://www.hiascend.com/document/detail/en/canncommercial/800/devaids/atc/atlasatcparam_16_0071.html;
  the flag's meaning: .../800/apiref/ascendcopapi/atlasascendc_api_07_0996.html).

The trustlist here is the Cube ops, as the pages' example (``"Conv2D"``: flag ``true``) shows.
⚠ The blocklist is an assumption: CANN ships its lists per SoC inside
``aic-<soc>-ops-info.json``, which no public page reproduces; :data:`MIX_KEEP_FP32` names the ops
whose float16 result is known to lose range or accuracy (exponentials, reductions,
normalisations). ``modify_mixlist`` takes ATC's ``--modify_mixlist`` JSON to change it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import onnx

from hetnpu.errors import ConfigError
from hetnpu.graph.opfamilies import FAMILY

__all__ = [
    "ATC_MODES",
    "MIX_KEEP_FP32",
    "PRECISIONS",
    "SHORT_TO_ATC",
    "NodePrecision",
    "PrecisionMode",
    "node_precisions",
    "precision_mode",
]

PRECISIONS: tuple[str, ...] = ("fp16", "fp32", "int8")
"""hetnpu's precision names, ATC's default first: the NPU computes floats in fp16, in fp32
(``must_keep_origin_dtype``), or is quantised to int8 (which admits what fp16 admits)."""

SHORT_TO_ATC: Mapping[str, str] = {"fp16": "force_fp16", "fp32": "must_keep_origin_dtype"}
"""hetnpu's float precision names as ATC ``--precision_mode`` values."""

MIX_KEEP_FP32: frozenset[str] = frozenset(
    {
        # ⚠ assumption (see the module docstring): ops whose fp16 result overflows or loses
        # the small terms of a long sum.
        "Exp", "Log", "Pow", "Softmax", "LogSoftmax", "Softplus",
        "ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp", "ReduceProd",
        "LayerNormalization", "InstanceNormalization", "GroupNormalization",
        "MeanVarianceNormalization", "LpNormalization", "RMSNormalization",
    }
)  # fmt: skip
"""ONNX op types on allow_mix_precision's blocklist (kept in float32)."""


def _cube_ops() -> frozenset[str]:
    return frozenset(op for op, family in FAMILY.items() if family in ("conv", "matmul"))


@dataclass(frozen=True)
class NodePrecision:
    """What one op computes in: its float operands, and the float result it writes."""

    inputs: str
    output: str


_FP16 = NodePrecision("fp16", "fp16")
_FP32 = NodePrecision("fp32", "fp32")


@dataclass(frozen=True)
class PrecisionMode:
    """One ``--precision_mode`` value: how Cube and Vector ops compute float32 data.

    ``vector`` is ``"fp16"``, ``"fp32"`` or ``"mixed"`` (per op, by ``trustlist``,
    ``blocklist`` and the graylist rule).
    """

    name: str
    cube: NodePrecision
    vector: str
    trustlist: frozenset[str] = frozenset()
    blocklist: frozenset[str] = frozenset()

    def modify_mixlist(self, mixlist: Mapping[str, Mapping[str, Sequence[str]]]) -> PrecisionMode:
        """This mode with ATC's ``--modify_mixlist`` edits applied.

        ``mixlist`` is the JSON ATC takes: ``{"black-list": {"to-add": [...], "to-remove":
        [...]}, "white-list": {...}}``; an op added to one list leaves the other, an op removed
        goes to the graylist. Op types are ONNX's.
        """
        if self.vector != "mixed":
            raise ConfigError(f"modify_mixlist: precision mode {self.name!r} has no mixlist")
        unknown = set(mixlist) - {"black-list", "white-list"}
        if unknown:
            raise ConfigError(f"modify_mixlist: unknown key(s) {sorted(unknown)}")
        black, white = set(self.blocklist), set(self.trustlist)
        for key, this, other in (("black-list", black, white), ("white-list", white, black)):
            edits = mixlist.get(key, {})
            bad = set(edits) - {"to-add", "to-remove"}
            if bad:
                raise ConfigError(f"modify_mixlist: {key}: unknown key(s) {sorted(bad)}")
            this.difference_update(edits.get("to-remove", ()))
            this.update(edits.get("to-add", ()))
            other.difference_update(edits.get("to-add", ()))
        return replace(self, trustlist=frozenset(white), blocklist=frozenset(black))


ATC_MODES: Mapping[str, PrecisionMode] = {
    "force_fp16": PrecisionMode("force_fp16", _FP16, "fp16"),
    "allow_fp32_to_fp16": PrecisionMode("allow_fp32_to_fp16", _FP16, "fp32"),
    "force_fp32": PrecisionMode("force_fp32", NodePrecision("fp16", "fp32"), "fp32"),
    "must_keep_origin_dtype": PrecisionMode("must_keep_origin_dtype", _FP32, "fp32"),
    "allow_mix_precision": PrecisionMode(
        "allow_mix_precision", _FP16, "mixed", _cube_ops(), MIX_KEEP_FP32
    ),
}
"""ATC's ``--precision_mode`` values that the simulated NPU computes (the module docstring)."""

_ALIASES = {
    "cube_fp16in_fp32out": "force_fp32",
    "allow_mix_precision_fp16": "allow_mix_precision",
    **SHORT_TO_ATC,
}


def precision_mode(name: str) -> PrecisionMode:
    """The :class:`PrecisionMode` for an ATC mode name, an alias of one, or ``fp16``/``fp32``."""
    mode = ATC_MODES.get(_ALIASES.get(name, name))
    if mode is None:
        known = ", ".join(
            [*SHORT_TO_ATC, *ATC_MODES, *(a for a in _ALIASES if a not in SHORT_TO_ATC)]
        )
        raise ConfigError(f"precision mode {name!r}: choose one of {known}")
    return mode


def node_precisions(
    nodes: Iterable[onnx.NodeProto], mode: PrecisionMode
) -> dict[str, NodePrecision]:
    """What each of ``nodes`` (in topological order) computes in under ``mode``, keyed by the
    node's first output.

    Under ``allow_mix_precision`` a graylist op follows the op producing its first input that
    some op produces; with none (it reads only graph inputs and weights), it keeps float32.
    """
    cube = _cube_ops()
    out: dict[str, NodePrecision] = {}
    producer: dict[str, str] = {}
    for node in nodes:
        key = node.output[0] if node.output else node.name
        if mode.vector != "mixed":
            prec = mode.cube if node.op_type in cube else NodePrecision(mode.vector, mode.vector)
        elif node.op_type in mode.blocklist:
            prec = _FP32
        elif node.op_type in mode.trustlist:
            prec = mode.cube if node.op_type in cube else _FP16
        else:
            upstream = next((producer[i] for i in node.input if i in producer), None)
            up = out[upstream].output if upstream is not None else "fp32"
            prec = NodePrecision(up, up)
        out[key] = prec
        for o in node.output:
            producer[o] = key
    return out
