"""Validated device specifications: an Ascend chip (``NpuSpec``), a host CPU, a GPU, and links.

A spec is a frozen pydantic model whose field names carry their unit (``l0a_bytes``,
``clock_hz``, ``hbm_bytes_per_s``); the numbers themselves live in TOML presets with a source
per value (:mod:`hetnpu.devices.presets`), never in code. Values may arrive as strings (from
``--set KEY=VALUE``): integers written as ``2.4e12`` are accepted when integral, tuples as
``16,16,16``. Anything invalid becomes one :class:`~hetnpu.errors.ConfigError` that lists every
bad key (:func:`validate_spec`).

The structural rules come from the Da Vinci core (ascend-facts §1.1, §1.6): a Cube fractal is
16 rows of 32 bytes, so M and N are multiples of 16 and K·itemsize a multiple of 32 B; buffers
are allocated in 32-B blocks; L0A/L0B hold at least one 512-B fractal.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hetnpu.devices.rates import ELEMENT_BYTES, npu_rates
from hetnpu.errors import ConfigError

__all__ = [
    "BLOCK_BYTES",
    "DTYPE_ITEMSIZE",
    "FRACTAL_BYTES",
    "CpuSpec",
    "GpuSpec",
    "LinkSpec",
    "NpuSpec",
    "flat_keys",
    "unit_of",
    "validate_spec",
]

DTYPE_ITEMSIZE = ELEMENT_BYTES
"""Bytes per element of each Cube input dtype (:data:`hetnpu.devices.rates.ELEMENT_BYTES`)."""
BLOCK_BYTES = 32
"""UB/L1 allocation block and the byte width of one fractal row (ascend-facts §1.1, §1.6)."""
FRACTAL_BYTES = 16 * BLOCK_BYTES
"""One L0A/L0B fractal: 16 rows of 32 B = 512 B (ascend-facts §1.6)."""
_FRACTAL_ROWS = 16

_UNITS = (  # (name suffix, unit); the first match wins, so longer suffixes come first
    ("_bytes_per_s", "bytes/s"),
    ("_bytes_per_cycle", "bytes/cycle"),
    ("_bytes", "bytes"),
    ("_hz", "Hz"),
    ("_cycles", "cycles"),
    ("_flops", "FLOP/s"),
    ("_ops", "OP/s"),
    ("_s", "s"),
    ("_cores", "count"),
    ("_channels", "count"),
    ("_ids", "count"),
)


def unit_of(key: str) -> str:
    """The unit a spec key's name declares (``"hbm_bytes_per_s"`` → ``"bytes/s"``), or ``""``.

    >>> unit_of("l0a_bytes"), unit_of("host_link.latency_s"), unit_of("name")
    ('bytes', 's', '')
    """
    leaf = key.rsplit(".", 1)[-1]
    if leaf.startswith("cube_mkn_"):
        return "elements"
    if leaf in ("cores", "sms"):
        return "count"
    return next((unit for suffix, unit in _UNITS if f"_{leaf}".endswith(suffix)), "")


# -- coercion of values that may come from the command line as strings ---------------------


def _expected(kind: str, value: Any, info: ValidationInfo) -> ValueError:
    unit = unit_of(info.field_name or "")
    where = "" if unit in ("", "count") else f" in {unit}"
    return ValueError(f"expected {kind}{where}, got {value!r}")


def _as_float(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool):
        raise _expected("a number", value, info)
    if isinstance(value, str):
        try:
            value = float(value.strip().replace("_", ""))
        except ValueError:
            # "1GB", "2.4 GHz": the unit is in the key's name, the value is a plain number.
            raise _expected("a plain number", value, info) from None
    if isinstance(value, int | float) and not math.isfinite(value):
        raise _expected("a finite number", value, info)
    return value


def _as_int(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool):
        raise _expected("an integer", value, info)
    given = value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            value = _as_float(text, info)
    # An integral float ("2.4e12", 1.0) is a whole number; 1.5 (or inf) is not.
    if isinstance(value, float):
        if not value.is_integer():
            raise _expected("an integer", given, info)
        return int(value)
    return value


def _as_optional_float(value: Any, info: ValidationInfo) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return _as_float(value, info)


def _as_mkn(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"expected three integers M,K,N, got {value!r}")
    return tuple(_as_int(v, info) for v in value)


Int = Annotated[int, BeforeValidator(_as_int)]
Float = Annotated[float, BeforeValidator(_as_float)]
Count = Annotated[int, BeforeValidator(_as_int), Field(ge=1)]
Size = Annotated[int, BeforeValidator(_as_int), Field(gt=0)]
Rate = Annotated[float, BeforeValidator(_as_float), Field(gt=0)]
Cycles = Annotated[int, BeforeValidator(_as_int), Field(ge=0)]
Seconds = Annotated[float, BeforeValidator(_as_float), Field(ge=0)]
Published = Annotated[Annotated[float, Field(gt=0)] | None, BeforeValidator(_as_optional_float)]
Mkn = Annotated[tuple[int, int, int], BeforeValidator(_as_mkn)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LinkSpec(_Spec):
    """A data link: host↔device PCIe, or device↔device (HCCS)."""

    name: str = Field(description="What the link is, e.g. 'PCIe 4.0 x16'")
    bytes_per_s: Rate = Field(description="Bandwidth in one direction, bytes/s")
    latency_s: Seconds = Field(description="Fixed cost of one transfer, seconds")


class NpuSpec(_Spec):
    """An Ascend chip as the simulator and the cost models see it (field contract: npuspec.md).

    Per-core buffers and rates are per AI core; on split chips (910B) L1/L0* belong to each
    AIC and UB to each AIV.
    """

    name: str = Field(description="Preset name, e.g. 'ascend910'")
    description: str = Field("", description="One line about the chip")
    soc_version: str = Field(description="ATC --soc_version, e.g. 'Ascend910A'")
    inherits: str | None = Field(
        None, description="Preset or file this spec was derived from (set by the loader)"
    )
    architecture: Literal["coupled", "split"] = Field(
        description="coupled: Cube and Vector in one AI core; split: AIC and AIV cores"
    )

    ai_cores: Count = Field(description="Cube-capable AI cores (split: AIC count), count")
    vector_cores: Int = Field(
        0, ge=0, description="Split: AIV count; coupled: standalone vector cores, count"
    )
    clock_hz: Rate = Field(description="AI core clock, Hz")
    cube_mkn_fp16: Mkn = Field(
        (16, 16, 16), description="M,K,N of one fp16 fractal mmad per cycle, elements"
    )
    cube_mkn_int8: Mkn = Field(
        (16, 32, 16), description="M,K,N of one int8 fractal mmad per cycle, elements"
    )
    cube_mkn_fp32: Mkn = Field(
        (16, 8, 16), description="M,K,N of one fp32 fractal mmad per cycle, elements"
    )
    cube_latency_cycles: Cycles = Field(
        description="Pipeline fill/drain of one mmad instruction, cycles"
    )
    vector_bytes_per_cycle: Size = Field(
        256, description="Bytes one vector unit processes per cycle (one repeat), bytes/cycle"
    )
    vector_latency_cycles: Cycles = Field(
        description="Issue latency of a vector instruction, cycles"
    )
    scalar_issue_cycles: Cycles = Field(
        description="Cycles the scalar unit spends issuing one instruction, cycles"
    )
    flag_ids: Count = Field(description="set_flag/wait_flag event IDs per pipe pair, count")

    l0a_bytes: Size = Field(description="L0A (Cube left operand) buffer per core, bytes")
    l0b_bytes: Size = Field(description="L0B (Cube right operand) buffer per core, bytes")
    l0c_bytes: Size = Field(description="L0C (Cube accumulator) buffer per core, bytes")
    l1_bytes: Size = Field(description="L1 buffer per core (split: per AIC), bytes")
    ub_bytes: Size = Field(description="Unified Buffer per core (split: per AIV), bytes")

    mte2_bytes_per_cycle: Rate = Field(description="MTE2 GM -> L1/UB read per core, bytes/cycle")
    mte2_l2_bytes_per_cycle: Rate | None = Field(
        None,
        description="MTE2 read per core when the data is in L2 (default: the GM rate), bytes/cycle",
    )
    mte1_l0a_bytes_per_cycle: Rate = Field(description="MTE1 L1 -> L0A per core, bytes/cycle")
    mte1_l0b_bytes_per_cycle: Rate = Field(description="MTE1 L1 -> L0B per core, bytes/cycle")
    mte3_bytes_per_cycle: Rate = Field(description="MTE3 UB -> GM write per core, bytes/cycle")
    fixpipe_bytes_per_cycle: Rate = Field(
        description="L0C -> UB (coupled) or L0C -> GM (split) per core, bytes/cycle"
    )
    l1_to_ub_bytes_per_cycle: Float = Field(
        ge=0, description="L1 -> UB per core, coupled only (0 on split chips), bytes/cycle"
    )
    gm_unaligned_read_fraction: Float = Field(
        1.0,
        gt=0,
        le=1,
        description="Fraction of its GM/L2 read rate an MTE2 copy reaches when the rows it reads "
        "start off 512-B boundaries (a tile of a row-major operand whose row pitch is not a "
        "multiple of 512 B); 1: no penalty",
    )
    mte2_nd2nz_read_fraction: Float = Field(
        1.0,
        gt=0,
        le=1,
        description="Fraction of its GM/L2 read rate an MTE2 copy reaches when it converts a "
        "row-major ND matrix to NZ fractals on the way (Nd2Nz DataCopy) rather than copying "
        "fractals; 1: no penalty",
    )
    transdata_bytes_per_cycle: Rate | None = Field(
        None,
        description="What CANN's TransData kernel converts between NCHW and NC1HWC0 (more than "
        "4 channels) per core, bytes/cycle of the NC1HWC0 side; unset: one Vector pass at "
        "vector_bytes_per_cycle",
    )
    mte_latency_cycles: Cycles = Field(description="Fixed latency of one MTE transfer, cycles")
    gm_latency_cycles: Cycles = Field(description="Extra latency of a GM (DRAM) access, cycles")
    task_launch_s: Seconds = Field(
        0.0,
        description="What the task scheduler takes to start each kernel of an offline model "
        "on the AI cores (graph mode), seconds; charged before every op that is a kernel",
    )
    model_execute_s: Seconds = Field(
        0.0,
        description="What a synchronous aclmdlExecute takes beyond the model's tasks on the "
        "device (the host's call into the runtime, the model-run command to the task "
        "scheduler, the completion back to the host), seconds; part of a host-timed latency "
        "(SimResult.execute_latency_s), not of the device's cycles",
    )
    stream_switch_s: Seconds | None = Field(
        None,
        description="What one control task on the stream takes (GE runs If/While as "
        "StreamSwitch/StreamActive tasks, aclrtSwitchStream), seconds; charged once per If "
        "and once per loop trip plus the exit; unset: one kernel launch (task_launch_s)",
    )

    host_op_s: Seconds | None = Field(
        None,
        description="What the host takes to schedule one op of a dynamic-shape graph (GE host "
        "scheduling: the op's InferShape, tiling and launch), seconds; unset: no op is "
        "host-scheduled (the LLM what-if's shapes=dynamic then times the graph as sunk)",
    )

    @property
    def control_task_s(self) -> float:
        """Seconds of one control task: ``stream_switch_s``, else one ``task_launch_s``."""
        return self.task_launch_s if self.stream_switch_s is None else self.stream_switch_s

    l2_bytes: Size = Field(description="Chip L2 cache, bytes")
    l2_kind: Literal["cache", "buffer"] = Field(
        "cache",
        description=(
            "cache: a hardware write-back cache, which writes an evicted dirty tensor back to "
            "device memory; buffer: L2 that GE allocates to tensors (platform ini l2_type=1), "
            "which frees a tensor once its last reader has run, without writing it back"
        ),
    )
    l2_bytes_per_s: Rate = Field(description="Aggregate L2 bandwidth, bytes/s")
    hbm_bytes: Size = Field(description="Device memory capacity, bytes")
    hbm_channels: Count = Field(description="Device memory channels (stacks), count")
    hbm_bytes_per_s: Rate = Field(description="Aggregate device-memory bandwidth, bytes/s")
    memory_kind: str = Field(description="Device memory technology, e.g. 'HBM2', 'LPDDR4X'")

    published_fp16_flops: Published = Field(
        None, description="Vendor's peak fp16 (validation only; None if unpublished), FLOP/s"
    )
    published_int8_ops: Published = Field(
        None, description="Vendor's peak int8 (validation only; None if unpublished), OP/s"
    )

    host_link: LinkSpec = Field(description="Host <-> device link")

    @field_validator("cube_mkn_fp16", "cube_mkn_int8", "cube_mkn_fp32")
    @classmethod
    def _fractal(cls, mkn: tuple[int, int, int], info: ValidationInfo) -> tuple[int, int, int]:
        m, k, n = mkn
        itemsize = DTYPE_ITEMSIZE[(info.field_name or "")[-4:]]
        if min(mkn) <= 0:
            raise ValueError(f"M,K,N must be > 0, got {mkn}")
        if m % _FRACTAL_ROWS or n % _FRACTAL_ROWS:
            raise ValueError(f"M and N must be multiples of {_FRACTAL_ROWS}, got {mkn}")
        if (k * itemsize) % BLOCK_BYTES:
            raise ValueError(
                f"K*itemsize must be a multiple of {BLOCK_BYTES} bytes (one fractal row), "
                f"got K={k} x {itemsize} B"
            )
        return mkn

    @field_validator(
        "vector_bytes_per_cycle", "l0a_bytes", "l0b_bytes", "l0c_bytes", "l1_bytes", "ub_bytes"
    )
    @classmethod
    def _blocks(cls, value: int, info: ValidationInfo) -> int:
        if value % BLOCK_BYTES:
            raise ValueError(f"must be a multiple of {BLOCK_BYTES} bytes, got {value}")
        if info.field_name in ("l0a_bytes", "l0b_bytes") and value < FRACTAL_BYTES:
            raise ValueError(f"must hold one {FRACTAL_BYTES}-byte fractal, got {value}")
        return value

    @model_validator(mode="after")
    def _architecture(self) -> NpuSpec:
        if self.architecture == "split" and self.vector_cores < self.ai_cores:
            raise ValueError(
                f"vector_cores: a split chip needs at least one AIV per AIC, got "
                f"{self.vector_cores} < ai_cores {self.ai_cores}"
            )
        if self.architecture == "coupled" and self.l1_to_ub_bytes_per_cycle <= 0:
            raise ValueError(
                "l1_to_ub_bytes_per_cycle: a coupled chip has an L1 -> UB path, must be > 0, "
                f"got {self.l1_to_ub_bytes_per_cycle}"
            )
        return self

    # -- derived -----------------------------------------------------------------------------

    def cube_mkn(self, dtype: str) -> tuple[int, int, int]:
        """M,K,N of the fractal mmad the Cube does per cycle for ``dtype`` (fp16, int8, fp32)."""
        if dtype not in DTYPE_ITEMSIZE:
            raise ConfigError(f"dtype {dtype!r}: choose one of {', '.join(DTYPE_ITEMSIZE)}")
        mkn: tuple[int, int, int] = getattr(self, f"cube_mkn_{dtype}")
        return mkn

    def peak_flops(self, dtype: str = "fp16") -> float:
        """Peak Cube throughput: ai_cores × M·K·N × 2 × clock_hz (a MAC counts as 2 ops).

        This is the convention behind the published 256 TFLOPS of the 910 (ascend-facts §2).

        Examples
        --------
        >>> from hetnpu.devices.presets import npu_spec
        >>> npu_spec("ascend910").peak_flops("fp16") / 1e12
        256.0
        """
        self.cube_mkn(dtype)  # a ConfigError naming the dtype for anything else
        return npu_rates(self, dtype).cube_flops_per_s

    def cycles_to_seconds(self, cycles: float) -> float:
        """Seconds that ``cycles`` AI-core clock cycles take."""
        return cycles / self.clock_hz

    cycles_to_s = cycles_to_seconds


class CpuSpec(_Spec):
    """A host CPU as a roofline: peak FLOP/s, memory bandwidth and a per-op dispatch cost."""

    name: str = Field(description="Preset name")
    description: str = Field("", description="One line about the CPU")
    cores: Count = Field(description="Physical cores, count")
    clock_hz: Rate = Field(description="Base clock, Hz")
    peak_fp32_flops: Rate = Field(description="Peak fp32 throughput, FLOP/s")
    peak_fp16_flops: Rate = Field(description="Peak fp16 throughput, FLOP/s")
    mem_bytes_per_s: Rate = Field(description="Main-memory bandwidth, bytes/s")
    launch_overhead_s: Seconds = Field(description="Per-op dispatch overhead, seconds")
    mem_bytes: Size = Field(description="Main-memory capacity, bytes")


class GpuSpec(_Spec):
    """A GPU as a roofline, plus the link to its host."""

    name: str = Field(description="Preset name")
    description: str = Field("", description="One line about the GPU")
    sms: Count = Field(description="Streaming multiprocessors, count")
    clock_hz: Rate = Field(description="Boost clock, Hz")
    peak_fp32_flops: Rate = Field(description="Peak fp32 throughput, FLOP/s")
    peak_fp16_flops: Rate = Field(description="Peak fp16 (tensor core, dense) throughput, FLOP/s")
    mem_bytes_per_s: Rate = Field(description="Device-memory bandwidth, bytes/s")
    launch_overhead_s: Seconds = Field(description="Per-kernel launch overhead, seconds")
    mem_bytes: Size = Field(description="Device-memory capacity, bytes")
    host_link: LinkSpec = Field(description="Host <-> device link")


# -- turning pydantic's errors into one line ---------------------------------------------------

SpecT = TypeVar("SpecT", bound=BaseModel)


def flat_keys(cls: type[BaseModel]) -> list[str]:
    """Every key of ``cls``; a nested model's fields as ``outer.inner`` (``host_link.name``)."""
    keys = []
    for name, field in cls.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            keys += [f"{name}.{inner}" for inner in flat_keys(sub)]
        else:
            keys.append(name)
    return keys


def _describe(err: Mapping[str, Any], known: list[str]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    kind, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"]))
    elif kind == "greater_than":
        text = f"must be > {ctx['gt']}, got {got!r}"
    elif kind == "greater_than_equal":
        text = f"must be >= {ctx['ge']}, got {got!r}"
    elif kind == "extra_forbidden":
        close = difflib.get_close_matches(key, known, n=3)
        text = "unknown key" + (f" (did you mean {', '.join(close)}?)" if close else "")
    elif kind == "missing":
        text = "required key missing"
    elif kind == "literal_error":
        text = f"must be one of {ctx['expected']}, got {got!r}"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        text = f"expected a table of keys, got {got!r}"
    else:
        text = f"{err['msg'].lower()}, got {got!r}"
    return f"{key}: {text}" if key else text


def validate_spec(
    cls: type[SpecT],
    data: Mapping[str, Any],
    where: str,
    origins: Mapping[str, str] | None = None,
) -> SpecT:
    """Validate ``data`` as a ``cls`` spec, or raise one ConfigError listing every bad key.

    Parameters
    ----------
    cls
        ``NpuSpec``, ``CpuSpec``, ``GpuSpec`` or ``LinkSpec``.
    data
        Keys and values, as read from TOML or given as overrides.
    where
        The file or preset the data came from; it starts the message.
    origins
        Key → where that key was set, when not ``where`` itself (an inherited preset, an
        override); appended to that key's complaint.

    Raises
    ------
    ConfigError
        ``"<where>: <key>: <problem>; <key>: <problem>"``, all on one line.
    """
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        known = flat_keys(cls)
        parts = []
        for err in exc.errors():
            text = _describe(err, known)
            origin = (origins or {}).get(".".join(str(p) for p in err["loc"][:2]))
            origin = origin or (origins or {}).get(str(err["loc"][0]) if err["loc"] else "")
            if origin and origin != where:
                text += f" (set by {origin})"
            parts.append(text)
        raise ConfigError(f"{where}: " + "; ".join(parts).replace("\n", " ")) from None
