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

NPU_PRESETS = ["ascend310", "ascend310p", "ascend910", "ascend910b"]
ALL_PRESETS = [*NPU_PRESETS, "cpu_x86", "gpu_datacentre"]

# Published peaks as ascend-facts states them (§0, §2), written here as literals so that the
# test does not take them from the presets it checks. None: no published figure.
PUBLISHED = {
    "ascend310": (8e12, 16e12),  # [HISI-310] "8 TOPS@FP16", 16 TOPS int8
    "ascend310p": (None, 140e12),  # ⚠ [DERIVED] Atlas 300I Duo 280 TOPS / 2 chips
    "ascend910": (256e12, 512e12),  # [AIS-SOC][HC19-VE]
    "ascend910b": (None, None),  # 353.9 TF is derived from the ini, not published
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


@pytest.mark.parametrize("name", [n for n in NPU_PRESETS if any(PUBLISHED[n])])
def test_derived_peak_is_within_5_percent_of_the_published_figure(name: str) -> None:
    spec = chips.load(name)
    fp16, int8 = PUBLISHED[name]
    assert (spec.published_fp16_flops, spec.published_int8_ops) == (fp16, int8)
    for dtype, published in (("fp16", fp16), ("int8", int8)):
        if published is not None:
            m, k, n = spec.cube_mkn(dtype)
            derived = spec.ai_cores * m * k * n * 2 * spec.clock_hz
            assert derived == spec.peak_flops(dtype)
            assert abs(derived / published - 1) <= 0.05, (name, dtype, derived, published)


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
