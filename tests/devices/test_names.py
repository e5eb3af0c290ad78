"""Device names have one home: every place that lists, checks or describes them reads it."""

from __future__ import annotations

import pytest

from hetnpu.backends import DEVICES as BACKENDS
from hetnpu.devices.names import (
    DEFAULT_DEVICES,
    DESCRIPTIONS,
    DEVICE_KINDS,
    DEVICES,
    HOST,
    device_kind,
    parse_devices,
)
from hetnpu.devices.presets import KINDS as PRESET_KINDS
from hetnpu.errors import ConfigError
from hetnpu.scheduler.render import DEVICE_COLOURS


def test_every_table_keyed_by_device_covers_exactly_the_devices() -> None:
    assert set(DESCRIPTIONS) == set(BACKENDS) == set(DEVICE_COLOURS) == set(DEVICES)
    assert set(PRESET_KINDS) == set(DEVICE_KINDS) == {device_kind(d) for d in DEVICES}
    assert set(DEFAULT_DEVICES) <= set(DEVICES) and HOST in DEVICES


def test_names_are_checked_with_one_message() -> None:
    assert parse_devices(" sim-npu ,cpu") == ["sim-npu", "cpu"]
    with pytest.raises(ConfigError, match=r"unknown device\(s\) 'tpu'; known devices: npu, "):
        parse_devices("npu,tpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'; known devices: npu, sim-npu"):
        device_kind("tpu")


def test_the_cost_model_refuses_an_unknown_device_as_names_does(cost_model_910) -> None:
    from hetnpu.graph import load
    from hetnpu.models import build

    g = load(build("mlp", batch=1))
    node = next(n for n in g if not n.is_constant)
    with pytest.raises(ConfigError) as refused:
        cost_model_910.cost(g, node, "tpu")
    with pytest.raises(ConfigError) as named:
        device_kind("tpu")
    assert str(refused.value) == str(named.value)


def test_hetnpu_devices_lists_every_device(capsys: pytest.CaptureFixture[str]) -> None:
    from hetnpu.cli import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name, what in DESCRIPTIONS.items():
        assert f"  {name:<8} {what}" in out


@pytest.fixture(scope="module")
def cost_model_910():
    from hetnpu.scheduler import default_cost_model

    return default_cost_model("ascend910")
