"""Sweep points: parsing, grid and zip expansion, study files, key and value checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from hetnpu.errors import ConfigError
from hetnpu.whatif.grid import Study, check_keys, normalise_run_value, parse_grid_items

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweep.toml"


def test_parse_grid_items_types_and_order() -> None:
    got = parse_grid_items(["ai_cores=8,16,32", "hbm_bytes_per_s=0.6e12,1.2e12", "x=true,fp16"])
    assert got == {
        "ai_cores": [8, 16, 32],
        "hbm_bytes_per_s": [0.6e12, 1.2e12],
        "x": [True, "fp16"],
    }
    assert isinstance(got["ai_cores"][0], int)


@pytest.mark.parametrize("item", ["ai_cores", "=8", "ai_cores=", "ai_cores= , "])
def test_parse_grid_items_rejects_malformed(item: str) -> None:
    with pytest.raises(ConfigError, match="KEY=v1,v2"):
        parse_grid_items([item])


def test_parse_grid_items_rejects_repeated_key() -> None:
    with pytest.raises(ConfigError, match="'ai_cores'"):
        parse_grid_items(["ai_cores=8", "ai_cores=16"])


def test_grid_is_a_cartesian_product_last_key_fastest() -> None:
    study = Study(
        "mlp", grid={"ai_cores": [8, 16, 32], "batch": [1, 8]}, fixed={"precision": "fp16"}
    )
    points = study.points()
    assert len(points) == 6
    assert points[:3] == [
        {"precision": "fp16", "ai_cores": 8, "batch": 1},
        {"precision": "fp16", "ai_cores": 8, "batch": 8},
        {"precision": "fp16", "ai_cores": 16, "batch": 1},
    ]
    assert {(p["ai_cores"], p["batch"]) for p in points} == {
        (c, b) for c in (8, 16, 32) for b in (1, 8)
    }


def test_zipped_lists_vary_together_and_combine_with_the_grid() -> None:
    study = Study(
        "mlp", grid={"ai_cores": [8, 32]}, zipped={"batch": [1, 8], "precision": ["fp16", "int8"]}
    )
    pairs = [(p["ai_cores"], p["batch"], p["precision"]) for p in study.points()]
    assert pairs == [(8, 1, "fp16"), (8, 8, "int8"), (32, 1, "fp16"), (32, 8, "int8")]


def test_zip_lengths_must_match() -> None:
    with pytest.raises(ConfigError, match="batch=2"):
        Study("mlp", zipped={"batch": [1, 8], "ai_cores": [8]}).points()


def test_key_in_grid_and_zip_is_refused() -> None:
    with pytest.raises(ConfigError, match="'batch'"):
        Study("mlp", grid={"batch": [1]}, zipped={"batch": [2]}).points()


def test_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"'hbm_byte_per_s'.*did you mean hbm_bytes_per_s"):
        Study("mlp", grid={"ai_cores": [8], "hbm_byte_per_s": [1e12]}).points()
    check_keys(["host_link.bytes_per_s", "shape.input", "shape", "strategy", "l1_bytes"])
    with pytest.raises(ConfigError, match="'name'"):
        check_keys(["name"])  # the preset's identity is not a property to sweep


@pytest.mark.parametrize(
    ("key", "value", "canonical"),
    [
        ("batch", 8, 8),
        ("batch", 8.0, 8),
        ("shape.input", "1x3x32x32", "1x3x32x32"),
        ("shape.input", [1, 3, 32, 32], "1x3x32x32"),
        ("shape", 784, "784"),
        ("devices", "npu,cpu", "npu+cpu"),
        ("devices", ["npu", "gpu", "cpu"], "npu+gpu+cpu"),
        ("precision", "int8", "int8"),
        ("strategy", "heft", "heft"),
        ("double_buffer", False, False),
    ],
)
def test_run_values_are_normalised(key: str, value: object, canonical: object) -> None:
    assert normalise_run_value(key, value) == canonical


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch", 0),
        ("batch", 1.5),
        ("batch", True),
        ("shape.input", "1x0x3"),
        ("shape.input", "axb"),
        ("devices", "npu+tpu"),
        ("precision", "bf16"),
        ("strategy", "random"),
        ("double_buffer", "yes"),
    ],
)
def test_bad_run_values_name_their_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key.split(".")[0]):
        normalise_run_value(key, value)


def test_study_toml_flattens_dotted_keys(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    f = tmp_path / "study.toml"
    f.write_text(
        'model = "m.onnx"\nchip = "ascend310"\n'
        "[fixed]\nprecision = 'fp16'\n"
        "[grid]\nai_cores = [1, 2]\nhost_link.bytes_per_s = [1e9, 2e9]\n"
        "[zip]\nshape.input = ['1x784', '2x784']\nbatch = [1, 2]\n"
    )
    study = Study.from_toml(f)
    assert study.model == str(tmp_path / "m.onnx")
    assert study.chip == "ascend310"
    assert dict(study.grid) == {"ai_cores": [1, 2], "host_link.bytes_per_s": [1e9, 2e9]}
    assert dict(study.zipped) == {"shape.input": ["1x784", "2x784"], "batch": [1, 2]}
    assert len(study.points()) == 8


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('model = "mlp"\n[grids]\na = [1]\n', "'grids'"),
        ("chip = 'ascend910'\n", "'model'"),
        ('model = "mlp"\ngrid = 3\n', r"\[grid\]"),
        ("model = ", "study.toml"),
    ],
)
def test_bad_study_files_are_config_errors(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "study.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        Study.from_toml(f)


def test_bundled_example_study_is_valid() -> None:
    study = Study.from_toml(EXAMPLE)
    points = study.points()
    assert study.model == "resnet50" and study.chip == "ascend910"
    assert len(points) == 3 * 3 * 2 * 2
    assert {"ai_cores", "hbm_bytes_per_s", "batch", "precision"} <= set(points[0])
    # Every point validates against the real chip and model (nothing is simulated).
    from hetnpu.whatif import prepare

    prep = prepare(study)
    assert len(set(prep.keys)) == 36
    assert {t.shapes for t in prep.tasks} == {
        (("input", (1, 3, 224, 224)),),
        (("input", (8, 3, 224, 224)),),
    }


def test_resume_key_changes_when_the_timing_code_does(monkeypatch) -> None:
    from hetnpu.whatif import grid

    before = grid.point_key("m", "{}", {"batch": 1})
    assert before == grid.point_key("m", "{}", {"batch": 1})
    monkeypatch.setattr(grid, "timing_code_digest", lambda: "edited")
    assert grid.point_key("m", "{}", {"batch": 1}) != before
