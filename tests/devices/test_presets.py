"""The packaged presets, the TOML loader (inheritance, overrides, errors) and `hetnpu devices`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hetnpu import chips
from hetnpu.cli import main
from hetnpu.devices import presets
from hetnpu.devices.spec import CpuSpec, GpuSpec, NpuSpec, flat_keys
from hetnpu.errors import ConfigError

NPU_PRESETS = ["ascend310", "ascend310p", "ascend910", "ascend910b", "ascend910b4"]
ALL_PRESETS = [*NPU_PRESETS, "cpu_x86", "gpu_datacentre"]

# The presets' values as ascend-facts.md gives them (the section and source tag beside each),
# written here as literals so that the tests do not take them from the presets they check: a
# preset value that drifts from its source fails test_preset_values_equal_the_sourced_figures.
# Values the fact sheet marks as guesses or assumptions (UB of the 910, latencies...) are left
# out: there is no figure to hold them to.
SOURCED: dict[str, dict[str, object]] = {
    "ascend910": {
        "architecture": "coupled",  # [HIA-ARCH] §1.9: Atlas Training (910) is coupled
        "ai_cores": 32,  # [AIS-SOC][INI-910A] §0
        "vector_cores": 0,  # [AIS-SOC] §2: no standalone vector cores
        "cube_mkn_fp16": (16, 16, 16),  # [AIS-SOC][HC19] §1.1: 4096 fp16 MAC/cycle
        "cube_mkn_int8": (16, 32, 16),  # [HC19] §0: 8192 int8 MAC/cycle; [DtypeMKN] §1.1
        # [DERIVED] §2: "976.6 MHz needed for 256 TF" = 256e12 / (32 x 4096 x 2)
        "clock_hz": 976_562_500.0,
        "vector_bytes_per_cycle": 256,  # [HC19-VE] §1.2: 2048-bit vector
        "flag_ids": 4,  # [HIA-SYNC] §1.7: event ids 0-3 on Atlas Training
        "l0a_bytes": 64 * 1024,  # [INI-910A] §1.4
        "l0b_bytes": 64 * 1024,  # [INI-910A] §1.4
        "l0c_bytes": 256 * 1024,  # [INI-910A] §1.4
        "l1_bytes": 1024 * 1024,  # [INI-910A] §1.4
        "l2_bytes": 32 * 1024**2,  # [MLPERF][INI-910A] §2
        "mte1_l0a_bytes_per_cycle": 512.0,  # [GE-STUB][PYPTO-INI] §1.5
        "mte1_l0b_bytes_per_cycle": 256.0,  # [GE-STUB][PYPTO-INI] §1.5
        "l1_to_ub_bytes_per_cycle": 128.0,  # [GE-STUB][PYPTO-INI] §1.5
        "hbm_bytes": 32 * 1024**3,  # [MLPERF] §2: 32 GB HBM2
        "hbm_channels": 4,  # [AIS-SOC] §2: 4 HBM dies
        "hbm_bytes_per_s": 1.2e12,  # [AIS-SOC] §2: 1.2 TB/s total
        "published_fp16_flops": 256e12,  # [AIS-SOC][HC19-VE] §2
        "published_int8_ops": 512e12,  # [HC19-VE] §2
    },
    "ascend310": {
        "architecture": "coupled",  # [HIA-ARCH] §1.9
        "ai_cores": 2,  # [MZPH-310][GE-STUB] §0
        "cube_mkn_fp16": (16, 16, 16),  # [AET-310][GE-STUB] §1.1 (recommendation of §7 item 1)
        "cube_mkn_int8": (16, 32, 16),  # [HC19] §0: 8192 int8 MAC/cycle; [DtypeMKN] §1.1
        # [DERIVED] §2: '"8 TOPS@FP16" with 2 cores implies ≈488 MHz' = 8e12 / (2 x 4096 x 2)
        "clock_hz": 488_281_250.0,
        "vector_bytes_per_cycle": 256,  # [GE-STUB] vector_size 256 §1.2
        "l0a_bytes": 64 * 1024,  # [GE-STUB] §1.4
        "l0b_bytes": 64 * 1024,  # [GE-STUB] §1.4
        "l0c_bytes": 256 * 1024,  # [GE-STUB] §1.4
        "l1_bytes": 1024 * 1024,  # [GE-STUB] §1.4
        "ub_bytes": 256 * 1024,  # [GE-STUB] §1.4
        "l2_bytes": 8 * 1024**2,  # [GE-STUB] §1.4
        "mte2_bytes_per_cycle": 67.0,  # [GE-STUB] §1.5: GM read
        "mte2_l2_bytes_per_cycle": 128.0,  # [GE-STUB] §1.5: L2 read
        "mte1_l0a_bytes_per_cycle": 512.0,  # [GE-STUB] §1.5
        "mte1_l0b_bytes_per_cycle": 256.0,  # [GE-STUB] §1.5
        "mte3_bytes_per_cycle": 64.0,  # [GE-STUB] §1.5: GM write
        "fixpipe_bytes_per_cycle": 512.0,  # [GE-STUB] §1.5: L0C -> UB ("TODO: check")
        "l1_to_ub_bytes_per_cycle": 128.0,  # [GE-STUB] §1.5
        "published_fp16_flops": 8e12,  # [HISI-310] §2: "8 TOPS@FP16"
        "published_int8_ops": 16e12,  # [HISI-310] §2: 16 TOPS int8
    },
    "ascend310p": {
        "architecture": "coupled",  # [HIA-ARCH] §1.9: Atlas Inference (310P) is coupled
        "ai_cores": 8,  # [INI-310P3] §0
        "vector_cores": 7,  # [INI-310P3] §0, §1.9
        "cube_mkn_fp16": (16, 16, 16),  # §0: 4096 MAC/cycle (same core family)
        "cube_mkn_int8": (16, 32, 16),  # §0: 8192 MAC/cycle; [DtypeMKN] §1.1
        "clock_hz": 1.07e9,  # ⚠ [DERIVED] §0: "≈1.07 GHz implied by 140 TOPS"
        "flag_ids": 8,  # [HIA-SYNC] §1.7: event ids 0-7 on Atlas inference (310P)
        "l0a_bytes": 64 * 1024,  # [INI-310P3] §1.4
        "l0b_bytes": 64 * 1024,  # [INI-310P3] §1.4
        "l0c_bytes": 256 * 1024,  # [INI-310P3] §1.4
        "l1_bytes": 1024 * 1024,  # [INI-310P3] §1.4
        "ub_bytes": 256 * 1024,  # ⚠ [INI-310P3] §1.4 ("248 KB usable" per a 3P note)
        "l2_bytes": 16 * 1024**2,  # [INI-310P3] §1.4
        "hbm_bytes": 24 * 1024**3,  # ⚠ [INI-310P3] §0: 24 GB in the ini
        "hbm_bytes_per_s": 204e9,  # ⚠ [DERIVED] §2: Atlas 300I Duo 408 GB/s for 2 chips [3P-DUO]
        "published_fp16_flops": None,  # §0, §7 item 4: no source
        "published_int8_ops": 140e12,  # ⚠ [DERIVED] §2: Atlas 300I Duo 280 TOPS / 2 chips
    },
    "ascend910b": {
        "architecture": "split",  # [HIA-ARCH] §1.9: Atlas A2 is separated
        "ai_cores": 24,  # [INI-910B2] §0: 24 AIC
        "vector_cores": 48,  # [INI-910B2] §0: 48 AIV
        "cube_mkn_fp16": (16, 16, 16),  # [INI-910B2] §0: 4096 MAC/cycle
        "cube_mkn_int8": (16, 32, 16),  # [INI-910B1/B4] §1.1: DtypeMKN int8 16,32,16
        "clock_hz": 1.8e9,  # [INI-910B2] §0: cube 1800 MHz
        "flag_ids": 8,  # [HIA-SYNC] §1.7: event ids 0-7 on A2
        "l0a_bytes": 64 * 1024,  # [INI-910B2][CAT-ARCH] §1.4
        "l0b_bytes": 64 * 1024,  # [INI-910B2][CAT-ARCH] §1.4
        "l0c_bytes": 128 * 1024,  # [INI-910B2][CAT-OPT] §1.4
        "l1_bytes": 512 * 1024,  # [INI-910B2][CAT-OPT] §1.4
        "ub_bytes": 196_608,  # [INI-910B2] §1.4: ub_size=196608
        "l2_bytes": 192 * 1024**2,  # [INI-910B2] §1.4
        "mte2_bytes_per_cycle": 32.0,  # [PYPTO-INI][INI-910B1] §1.5: GM read 32
        "mte2_l2_bytes_per_cycle": 110.0,  # [PYPTO-INI][INI-910B1] §1.5: L2 read 110
        "mte1_l0a_bytes_per_cycle": 512.0,  # [PYPTO-INI] §1.5
        "mte1_l0b_bytes_per_cycle": 256.0,  # [PYPTO-INI] §1.5
        "mte3_bytes_per_cycle": 64.0,  # [PYPTO-INI][INI-910B1] §1.5: UB -> DDR 64
        "l1_to_ub_bytes_per_cycle": 0.0,  # [HIA-ARCH] §1.5, §1.9: no L1 -> UB path when split
        "hbm_bytes": 64 * 1024**3,  # [INI-910B2] §2: 64 GB HBM
        "hbm_bytes_per_s": 1.5e12,  # ⚠ §2, §7 item 5: "~1.5 TB/s" (3P roofline note)
        "published_fp16_flops": None,  # §0: 353.9 TF is [DERIVED], no vendor figure
        "published_int8_ops": None,  # §0: 707.8 TOPS is [DERIVED]
    },
    "ascend910b4": {
        "architecture": "split",  # [HIA-ARCH] §1.9: Atlas A2 is separated
        "soc_version": "Ascend910B4",  # [ATC-FW] §4.3
        "ai_cores": 20,  # [INI-910B4] §1.9: 20 AIC
        "vector_cores": 40,  # [INI-910B4] §1.9: 40 AIV
        "cube_mkn_fp16": (16, 16, 16),  # [INI-910B4] §1.1: DtypeMKN
        "cube_mkn_int8": (16, 32, 16),  # [INI-910B1/B4] §1.1: DtypeMKN int8 16,32,16
        "clock_hz": 1.5e9,  # ⚠ [INI-910B4] §2: cube_freq 1500 (3P test fixture)
        "ub_bytes": 196_608,  # as the 910B2 [INI-910B2] §1.4
        "l2_bytes": 96 * 1024**2,  # [INI-910B4] §2
        "hbm_bytes": 32 * 1024**3,  # [INI-910B4] §2
        "hbm_bytes_per_s": 0.96e12,  # ⚠ [DERIVED] §1.5: 20 x 32 B x 1.5 GHz
        "published_fp16_flops": None,  # §2: 245.76 TF is derived from the ini, not published
    },
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the presets -------------------------------------------------------------------------------


def test_the_six_presets_are_packaged_with_their_kinds() -> None:
    assert presets.names() == sorted(ALL_PRESETS)
    assert chips.names() == NPU_PRESETS
    assert presets.names("cpu") == ["cpu_x86"]
    assert presets.names("gpu") == ["gpu_datacentre"]


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_every_preset_loads_and_every_parameter_has_a_source(name: str) -> None:
    preset = presets.load_preset(name)
    assert preset.spec.name == name
    assert preset.label == f"{name} (presets/{name}.toml)"
    unsourced = {"name", "description", "inherits"}
    missing = [
        k for k in flat_keys(type(preset.spec)) if k not in unsourced and k not in preset.sources
    ]
    assert missing == []
    # a source names where the value comes from, never the loader's placeholder
    assert not [k for k, v in preset.sources.items() if "no source given" in v]
    assert all(v.strip() for v in preset.sources.values())


@pytest.mark.parametrize("name", NPU_PRESETS)
def test_preset_values_equal_the_sourced_figures(name: str) -> None:
    spec = chips.load(name)
    assert {key: getattr(spec, key) for key in SOURCED[name]} == SOURCED[name]


# Peak = 2 (a MAC is two ops, §2's convention) x M·K·N MACs per cycle per core x cores x clock,
# each input a sourced literal: (preset, dtype, cores, (m, k, n), clock Hz, hand-computed peak).
# The hand peaks are the products written out, not computed from the other columns, so a
# wrong factor anywhere (preset, spec.peak_flops or this table) shows.
HAND_PEAKS = [
    # 32 x 4096 x 2 x 976.5625 MHz [DERIVED §2] = 256.0 TFLOPS
    ("ascend910", "fp16", 32, (16, 16, 16), 976_562_500.0, 256.0e12),
    # 32 x 8192 x 2 x 976.5625 MHz = 512.0 TOPS
    ("ascend910", "int8", 32, (16, 32, 16), 976_562_500.0, 512.0e12),
    # 2 x 4096 x 2 x 488.28125 MHz [DERIVED §2] = 8.0 TFLOPS
    ("ascend310", "fp16", 2, (16, 16, 16), 488_281_250.0, 8.0e12),
    # 2 x 8192 x 2 x 488.28125 MHz = 16.0 TOPS
    ("ascend310", "int8", 2, (16, 32, 16), 488_281_250.0, 16.0e12),
    # 8 x 8192 x 2 x 1.07 GHz [DERIVED §0] = 140.24704 TOPS
    ("ascend310p", "int8", 8, (16, 32, 16), 1.07e9, 140.24704e12),
    # 24 x 4096 x 2 x 1.8 GHz [INI-910B2] = 353.8944 TFLOPS (§0 lists 353.9 [DERIVED])
    ("ascend910b", "fp16", 24, (16, 16, 16), 1.8e9, 353.8944e12),
    # 24 x 8192 x 2 x 1.8 GHz = 707.7888 TOPS (§0 lists 707.8 [DERIVED])
    ("ascend910b", "int8", 24, (16, 32, 16), 1.8e9, 707.7888e12),
    # 20 x 4096 x 2 x 1.5 GHz [INI-910B4] = 245.76 TFLOPS (§2 lists 245.76, 3P, derived)
    ("ascend910b4", "fp16", 20, (16, 16, 16), 1.5e9, 245.76e12),
]


@pytest.mark.parametrize(("name", "dtype", "cores", "mkn", "clock", "peak"), HAND_PEAKS)
def test_peak_from_sourced_inputs_is_the_preset_peak_and_the_published_one(
    name: str, dtype: str, cores: int, mkn: tuple[int, int, int], clock: float, peak: float
) -> None:
    sourced = SOURCED[name]
    # The inputs are the sourced ones, so the peak is computed from the fact sheet's figures.
    assert (cores, mkn, clock) == (
        sourced["ai_cores"],
        sourced[f"cube_mkn_{dtype}"],
        sourced["clock_hz"],
    )
    m, k, n = mkn
    assert 2 * m * k * n * cores * clock == pytest.approx(peak, rel=1e-12)
    spec = chips.load(name)
    assert spec.peak_flops(dtype) == pytest.approx(peak, rel=1e-12)
    published = sourced["published_fp16_flops" if dtype == "fp16" else "published_int8_ops"]
    if published is not None:
        # Not a validation of the clock: no preset with a published peak has a clock
        # published for the same part, each is [DERIVED] from that peak, so this holds the
        # arithmetic (within the rounding of 1.07 GHz). The fact sheet's clocks published
        # apart from a peak do not reproduce the peaks the presets use: the 310's 680 MHz
        # [GE-STUB] gives 11.1 TFLOPS (39% over [HISI-310]'s 8) but 22.3 TOPS int8, the 22 per
        # chip of the Atlas 300I card [AIS-BASE]; the 910 ProA's 1.1 GHz [MLPERF] gives 288.4
        # TFLOPS, 12.6% over the 910's 256 (§2, §7 item 2: different frequency bins).
        assert peak == pytest.approx(published, rel=0.005)


def test_910b2_is_the_split_24_aic_48_aiv_chip_at_1_8_ghz_with_no_published_peak() -> None:
    spec = chips.load("ascend910b")
    assert (spec.architecture, spec.ai_cores, spec.vector_cores) == ("split", 24, 48)
    assert spec.clock_hz == 1.8e9
    assert spec.published_fp16_flops is None and spec.published_int8_ops is None
    assert spec.soc_version == "Ascend910B2"
    assert "none" in presets.load_preset("ascend910b").sources["published_fp16_flops"]


def test_conflicts_and_assumptions_are_marked_in_the_sources() -> None:
    s310 = presets.load_preset("ascend310").sources
    assert "680 MHz" in s310["clock_hz"] and "⚠" in s310["clock_hz"]
    assert "assumption" in s310["cube_latency_cycles"]
    assert "⚠" in presets.load_preset("ascend910b").sources["hbm_bytes_per_s"]
    assert "⚠" in presets.load_preset("ascend310p").sources["published_int8_ops"]
    assert "PCI-SIG" in presets.load_preset("ascend910").sources["host_link.bytes_per_s"]
    for name in ("cpu_x86", "gpu_datacentre"):
        assert "assumption" in presets.load_preset(name).sources["launch_overhead_s"]


def test_cpu_and_gpu_presets_load_through_their_own_loaders() -> None:
    cpu, gpu = presets.load_cpu(), presets.load_gpu()
    assert isinstance(cpu, CpuSpec) and isinstance(gpu, GpuSpec)
    assert gpu.host_link.bytes_per_s > 0
    with pytest.raises(ConfigError, match=r"cpu_x86 \(presets/cpu_x86.toml\): is a cpu preset"):
        chips.load("cpu_x86")


# -- inheritance and overrides ------------------------------------------------------------------


def test_a_file_inherits_a_preset_and_overrides_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "half910.toml",
        'inherits = "ascend910"\nai_cores = 16\n[host_link]\nbytes_per_s = 16e9\n'
        '[sources]\nai_cores = "what-if: half the cores"\n',
    )
    base = chips.load("ascend910")
    preset = presets.load_preset(str(path))
    spec = preset.spec
    assert isinstance(spec, NpuSpec)
    assert (spec.name, spec.inherits, spec.ai_cores) == ("half910", "ascend910", 16)
    assert spec.host_link.bytes_per_s == 16e9 and spec.host_link.name == base.host_link.name
    assert spec.model_dump(
        exclude={"name", "inherits", "ai_cores", "host_link"}
    ) == base.model_dump(exclude={"name", "inherits", "ai_cores", "host_link"})
    assert preset.sources["ai_cores"] == "what-if: half the cores"
    # the parent's source no longer describes the overridden value
    assert "half910.toml" in preset.sources["host_link.bytes_per_s"]
    assert preset.sources["l1_bytes"] == presets.load_preset("ascend910").sources["l1_bytes"]


def test_inheritance_chains_through_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "base.toml", 'inherits = "ascend310"\nclock_hz = 680e6\n')
    _write(
        tmp_path / "sub" / "leaf.toml", 'inherits = "../base.toml"\nname = "leaf"\nai_cores = 4\n'
    )
    spec = chips.load(tmp_path / "sub" / "leaf.toml")
    assert (spec.name, spec.ai_cores, spec.clock_hz, spec.l2_bytes) == ("leaf", 4, 680e6, 8 << 20)


def test_overrides_accept_cli_strings_and_dotted_keys() -> None:
    spec = chips.load(
        "ascend910",
        overrides={
            "cube_mkn_fp16": "32,16,16",
            "hbm_bytes": "2.4e12",
            "ai_cores": 8,
            "host_link.latency_s": "0",
        },
    )
    assert spec.cube_mkn_fp16 == (32, 16, 16)
    assert spec.hbm_bytes == 2_400_000_000_000
    assert spec.ai_cores == 8 and spec.host_link.latency_s == 0.0
    assert spec.peak_flops("fp16") == 8 * 32 * 16 * 16 * 2 * spec.clock_hz


def test_an_unknown_override_lists_close_matches() -> None:
    with pytest.raises(ConfigError) as info:
        chips.load("ascend910", overrides={"l0a_byte": "1"})
    msg = str(info.value)
    assert msg.startswith("ascend910 (presets/ascend910.toml): unknown key 'l0a_byte'")
    assert "l0a_bytes" in msg


def test_an_override_like_no_key_points_to_the_command_that_lists_them(tmp_path) -> None:
    # Not every key (the CLI cuts a line at 600 characters): the chip as the user named it.
    with pytest.raises(ConfigError) as info:
        chips.load("ascend910", overrides={"bogus": "1"})
    assert str(info.value).endswith("`hetnpu devices show ascend910` lists the keys")
    own = tmp_path / "my910.toml"
    own.write_text('inherits = "ascend910"\nname = "My 910"\n')
    with pytest.raises(ConfigError) as info:
        chips.load(str(own), overrides={"bogus": "1"})
    assert str(info.value).endswith(f"`hetnpu devices show {own}` lists the keys")


def test_a_bad_override_names_the_key_the_preset_and_the_override() -> None:
    with pytest.raises(ConfigError) as info:
        chips.load("ascend910", overrides={"hbm_bytes": "1.5"})
    assert str(info.value) == (
        "ascend910 (presets/ascend910.toml): hbm_bytes: expected an integer in bytes, "
        "got '1.5' (set by override)"
    )


# -- bad configurations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "fragment"),
    [
        ("l0a_bytes = -1", "l0a_bytes", "must be > 0, got -1"),
        ("ai_cores = 0", "ai_cores", "must be >= 1, got 0"),
        ("cube_mkn_fp16 = [8, 16, 16]", "cube_mkn_fp16", "multiples of 16"),
        ("cube_mkn_int8 = [16, 16, 16]", "cube_mkn_int8", "multiple of 32 bytes"),
        ("l0a_byte = 65536", "l0a_byte", "unknown key (did you mean l0a_bytes"),
        ('hbm_bytes = "1GB"', "hbm_bytes", "plain number in bytes"),
        ('clock_hz = "fast"', "clock_hz", "plain number in Hz"),
        ("ub_bytes = 1000", "ub_bytes", "multiple of 32"),
        ('architecture = "split"', "vector_cores", "at least one AIV per AIC"),
    ],
)
def test_a_bad_user_file_names_the_key_and_the_file(
    tmp_path: Path, line: str, key: str, fragment: str
) -> None:
    path = _write(tmp_path / "my_chip.toml", f'inherits = "ascend910"\n{line}\n')
    with pytest.raises(ConfigError) as info:
        chips.load(path)
    msg = str(info.value)
    assert msg.startswith(f"my_chip ({path}): ")
    assert f": {key}: " in msg and fragment in msg


def test_a_standalone_file_must_give_every_required_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "bare.toml", 'name = "bare"\nai_cores = 2\n')
    with pytest.raises(
        ConfigError, match=r"bare \(.*bare.toml\): .*clock_hz: required key missing"
    ):
        chips.load(path)


def test_bad_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.toml", 'inherits = "ascend910"\nai_cores = = 3\n')
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML: .*line 2"):
        chips.load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: no such chip file"):
        chips.load(str(tmp_path / "nowhere.toml"))


def test_an_inheritance_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    _write(tmp_path / "a.toml", 'inherits = "b.toml"\n')
    _write(tmp_path / "b.toml", 'inherits = "a.toml"\n')
    with pytest.raises(
        ConfigError, match=r"a\.toml: inheritance cycle: .*a\.toml -> .*b\.toml -> .*a\.toml"
    ):
        chips.load(tmp_path / "a.toml")
    _write(tmp_path / "me.toml", 'inherits = "me.toml"\n')
    with pytest.raises(ConfigError, match="inheritance cycle"):
        chips.load(tmp_path / "me.toml")


def test_an_unknown_preset_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        chips.load("ascend920")
    assert "unknown preset 'ascend920'" in str(info.value)
    assert all(name in str(info.value) for name in ALL_PRESETS)
    path = _write(tmp_path / "child.toml", 'inherits = "ascend920"\n')
    with pytest.raises(ConfigError, match=r"child\.toml: inherits: unknown preset 'ascend920'"):
        chips.load(path)


def test_a_source_for_no_parameter_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.toml", 'inherits = "ascend910"\n[sources]\nl1_byte = "x"\n')
    with pytest.raises(ConfigError, match=r"typo\.toml: sources\.l1_byte: names no parameter"):
        chips.load(path)


# -- the CLI ------------------------------------------------------------------------------------


def test_devices_lists_the_kinds_and_one_line_per_preset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for kind in ("npu", "sim-npu", "cpu", "gpu"):
        assert any(line.split()[:1] == [kind] for line in lines), kind
    for name in ALL_PRESETS:
        (row,) = [line for line in lines if line.split()[:1] == [name]]
        assert row
    (row910,) = [line for line in lines if line.split()[:1] == ["ascend910"]]
    assert "32" in row910 and "256 TFLOP/s" in row910 and "1.2 TB/s" in row910


def test_devices_show_prints_every_parameter_with_unit_and_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices", "show", "ascend910"]) == 0
    out = capsys.readouterr().out
    for key in flat_keys(NpuSpec):
        assert key in out, key
    assert "976562500" in out and "bytes/cycle" in out and "[AIS-SOC]" in out


def test_devices_show_applies_set_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "devices",
        "show",
        "ascend910",
        "--set",
        "ai_cores=16",
        "--set",
        "cube_mkn_int8=32,32,16",
    ]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ai_cores"] == 16 and data["cube_mkn_int8"] == [32, 32, 16]
    assert data["clock_hz"] == chips.load("ascend910").clock_hz
    assert main(args) == 0
    assert "override: '16'" in capsys.readouterr().out


def test_devices_show_reads_a_user_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "my_chip.toml", 'inherits = "ascend310"\nai_cores = 4\n')
    assert main(["devices", "show", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["name"], data["ai_cores"], data["inherits"]) == ("my_chip", 4, "ascend310")


def test_devices_show_of_a_bad_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "bad.toml", 'inherits = "ascend910"\nl0c_bytes = -64\n')
    assert main(["devices", "show", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert len(err) == 1
    assert "bad.toml" in err[0] and "l0c_bytes: must be > 0, got -64" in err[0]
