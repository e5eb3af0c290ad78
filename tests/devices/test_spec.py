"""Validation rules and derived figures of the device specs, independent of the presets."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from hetnpu.devices.spec import CpuSpec, GpuSpec, LinkSpec, NpuSpec, unit_of, validate_spec
from hetnpu.errors import ConfigError

WHERE = "toy (toy.toml)"


def _toy(**changes: Any) -> dict[str, Any]:
    """A small valid coupled chip: 2 cores at 1 GHz with the 310's buffers."""
    data: dict[str, Any] = {
        "name": "toy",
        "soc_version": "Ascend310",
        "architecture": "coupled",
        "ai_cores": 2,
        "clock_hz": 1e9,
        "cube_latency_cycles": 8,
        "vector_latency_cycles": 8,
        "scalar_issue_cycles": 4,
        "flag_ids": 4,
        "l0a_bytes": 65536,
        "l0b_bytes": 65536,
        "l0c_bytes": 262144,
        "l1_bytes": 1048576,
        "ub_bytes": 262144,
        "mte2_bytes_per_cycle": 67,
        "mte1_l0a_bytes_per_cycle": 512,
        "mte1_l0b_bytes_per_cycle": 256,
        "mte3_bytes_per_cycle": 64,
        "fixpipe_bytes_per_cycle": 512,
        "l1_to_ub_bytes_per_cycle": 128,
        "mte_latency_cycles": 16,
        "gm_latency_cycles": 100,
        "l2_bytes": 8388608,
        "l2_bytes_per_s": 1.25e11,
        "hbm_bytes": 8589934592,
        "hbm_channels": 2,
        "hbm_bytes_per_s": 5.12e10,
        "memory_kind": "LPDDR4X",
        "host_link": {"name": "PCIe", "bytes_per_s": 3.94e9, "latency_s": 1e-5},
    }
    data.update(changes)
    return data


def _error(**changes: Any) -> str:
    with pytest.raises(ConfigError) as info:
        validate_spec(NpuSpec, _toy(**changes), WHERE)
    return str(info.value)


def test_a_valid_chip_validates_with_the_contract_defaults() -> None:
    spec = validate_spec(NpuSpec, _toy(), WHERE)
    assert spec.cube_mkn_fp16 == (16, 16, 16)
    assert spec.cube_mkn_int8 == (16, 32, 16)
    assert spec.cube_mkn_fp32 == (16, 8, 16)
    assert spec.vector_bytes_per_cycle == 256
    assert spec.vector_cores == 0
    assert spec.published_fp16_flops is None and spec.published_int8_ops is None
    assert spec.host_link == LinkSpec(name="PCIe", bytes_per_s=3.94e9, latency_s=1e-5)


def test_specs_are_frozen_and_hashable() -> None:
    spec = validate_spec(NpuSpec, _toy(), WHERE)
    with pytest.raises(pydantic.ValidationError):
        spec.ai_cores = 4  # type: ignore[misc]
    assert hash(spec) == hash(validate_spec(NpuSpec, _toy(), WHERE))


def test_strings_from_the_command_line_are_parsed() -> None:
    spec = validate_spec(
        NpuSpec,
        _toy(
            ai_cores="4",
            hbm_bytes="2.4e12",
            clock_hz="1.5e9",
            cube_mkn_fp16="32,16,16",
            published_int8_ops="none",
            l1_bytes="1_048_576",
        ),
        WHERE,
    )
    assert spec.ai_cores == 4
    assert spec.hbm_bytes == 2_400_000_000_000 and isinstance(spec.hbm_bytes, int)
    assert spec.clock_hz == 1.5e9
    assert spec.cube_mkn_fp16 == (32, 16, 16)
    assert spec.published_int8_ops is None
    assert spec.l1_bytes == 1 << 20


def test_integral_floats_are_integers_but_fractions_are_not() -> None:
    assert validate_spec(NpuSpec, _toy(hbm_bytes=2.4e12), WHERE).hbm_bytes == 2_400_000_000_000
    msg = _error(ai_cores="1.5")
    assert msg.startswith(WHERE) and "ai_cores" in msg and "'1.5'" in msg


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"l0a_bytes": -1}, "l0a_bytes", "must be > 0, got -1"),
        ({"ai_cores": 0}, "ai_cores", "must be >= 1, got 0"),
        ({"clock_hz": 0}, "clock_hz", "must be > 0"),
        ({"hbm_bytes_per_s": -5e10}, "hbm_bytes_per_s", "must be > 0"),
        ({"cube_mkn_fp16": [8, 16, 16]}, "cube_mkn_fp16", "multiples of 16"),
        ({"cube_mkn_fp16": [16, 8, 16]}, "cube_mkn_fp16", "multiple of 32 bytes"),  # 8 x 2 B
        ({"cube_mkn_int8": [16, 16, 16]}, "cube_mkn_int8", "multiple of 32 bytes"),  # 16 x 1 B
        ({"cube_mkn_fp32": [16, 16, 24]}, "cube_mkn_fp32", "multiples of 16"),
        ({"cube_mkn_fp16": "16,16"}, "cube_mkn_fp16", "three integers"),
        ({"vector_bytes_per_cycle": 100}, "vector_bytes_per_cycle", "multiple of 32"),
        ({"ub_bytes": 1000}, "ub_bytes", "multiple of 32"),
        ({"l0b_bytes": 256}, "l0b_bytes", "512-byte fractal"),
        ({"hbm_bytes": "1GB"}, "hbm_bytes", "plain number in bytes, got '1GB'"),
        ({"clock_hz": "2.4 GHz"}, "clock_hz", "in Hz"),
        ({"ai_cores": True}, "ai_cores", "integer"),
        ({"clock_hz": float("inf")}, "clock_hz", "finite"),
        ({"architecture": "fused"}, "architecture", "'coupled' or 'split'"),
        ({"published_fp16_flops": -1}, "published_fp16_flops", "> 0"),
        ({"l0a_bytess": 65536}, "l0a_bytess", "unknown key (did you mean l0a_bytes"),
        ({"host_link": "pcie"}, "host_link", "expected a table"),
        (
            {"host_link": {"name": "x", "bytes_per_s": 0, "latency_s": 0}},
            "host_link.bytes_per_s",
            "> 0",
        ),
    ],
)
def test_every_violation_names_the_key_and_the_file(
    changes: dict[str, Any], key: str, fragment: str
) -> None:
    msg = _error(**changes)
    assert msg.startswith(f"{WHERE}: ")
    assert f"{key}: " in msg
    assert fragment in msg


def test_a_missing_key_is_named() -> None:
    data = _toy()
    del data["l1_bytes"]
    with pytest.raises(ConfigError, match=r"l1_bytes: required key missing"):
        validate_spec(NpuSpec, data, WHERE)


def test_split_chips_need_a_vector_core_per_ai_core() -> None:
    msg = _error(architecture="split", vector_cores=1, l1_to_ub_bytes_per_cycle=0)
    assert msg.startswith(WHERE) and "vector_cores: " in msg and "1 < ai_cores 2" in msg
    split = _toy(architecture="split", vector_cores=4, l1_to_ub_bytes_per_cycle=0)
    assert validate_spec(NpuSpec, split, WHERE).vector_cores == 4


def test_every_bad_key_is_listed_on_one_line() -> None:
    msg = _error(l0a_bytes=-1, ai_cores=0, bogus=1)
    assert "\n" not in msg
    for key in ("l0a_bytes", "ai_cores", "bogus"):
        assert f"{key}: " in msg
    assert msg.count(";") == 2


def test_origins_say_where_an_inherited_or_overridden_key_was_set() -> None:
    with pytest.raises(ConfigError, match=r"ai_cores: must be >= 1, got 0 \(set by override\)"):
        validate_spec(NpuSpec, _toy(ai_cores=0), WHERE, {"ai_cores": "override"})


def test_coupled_chips_need_an_l1_to_ub_path() -> None:
    assert "l1_to_ub_bytes_per_cycle" in _error(l1_to_ub_bytes_per_cycle=0)


def test_peak_flops_is_cores_times_mkn_times_two_times_clock() -> None:
    spec = validate_spec(NpuSpec, _toy(), WHERE)
    assert spec.peak_flops("fp16") == 2 * 16 * 16 * 16 * 2 * 1e9
    assert spec.peak_flops("int8") == 2 * 16 * 32 * 16 * 2 * 1e9
    assert spec.peak_flops("fp32") == 2 * 16 * 8 * 16 * 2 * 1e9
    assert spec.cube_mkn("int8") == (16, 32, 16)
    with pytest.raises(ConfigError, match="bf16"):
        spec.peak_flops("bf16")


def test_cycles_convert_to_seconds_at_the_clock() -> None:
    spec = validate_spec(NpuSpec, _toy(clock_hz=2e9), WHERE)
    assert spec.cycles_to_seconds(4e9) == 2.0
    assert spec.cycles_to_s(1000) == 5e-7


def test_cpu_gpu_and_link_specs_validate_too() -> None:
    link = {"name": "PCIe 4.0 x16", "bytes_per_s": 31.5e9, "latency_s": 1e-5}
    gpu = {
        "name": "g",
        "sms": 108,
        "clock_hz": 1.41e9,
        "peak_fp32_flops": 19.5e12,
        "peak_fp16_flops": 312e12,
        "mem_bytes_per_s": 1.555e12,
        "launch_overhead_s": 1e-5,
        "mem_bytes": 40 << 30,
        "host_link": link,
    }
    assert validate_spec(GpuSpec, gpu, "g").host_link.bytes_per_s == 31.5e9
    with pytest.raises(ConfigError, match=r"g: sms: must be >= 1, got 0"):
        validate_spec(GpuSpec, {**gpu, "sms": 0}, "g")
    cpu = {k: v for k, v in gpu.items() if k not in ("sms", "host_link")} | {"cores": 40}
    assert validate_spec(CpuSpec, cpu, "c").cores == 40
    with pytest.raises(ConfigError, match=r"c: host_link: unknown key"):
        validate_spec(CpuSpec, {**cpu, "host_link": link}, "c")
    with pytest.raises(ConfigError, match=r"l: latency_s: must be >= 0"):
        validate_spec(LinkSpec, {**link, "latency_s": -1}, "l")


def test_units_come_from_key_names_and_descriptions_state_them() -> None:
    assert unit_of("hbm_bytes_per_s") == "bytes/s"
    assert unit_of("host_link.bytes_per_s") == "bytes/s"
    assert unit_of("mte2_bytes_per_cycle") == "bytes/cycle"
    assert unit_of("gm_latency_cycles") == "cycles"
    assert unit_of("launch_overhead_s") == "s"
    for cls in (NpuSpec, CpuSpec, GpuSpec, LinkSpec):
        for key, field in cls.model_fields.items():
            unit = {"s": "seconds", "": ""}.get(unit_of(key), unit_of(key))
            assert field.description, (cls.__name__, key)
            assert unit in field.description, (cls.__name__, key, unit)
