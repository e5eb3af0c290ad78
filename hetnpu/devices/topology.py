"""Multi-NPU topologies: which NPUs a system has and which link joins each pair of them.

A topology is a hierarchy of levels, innermost first: two dies in a package (A3's SIO), NPUs
in a server (HCCS), servers in a cluster (RoCE). Two NPUs talk over the link of the innermost
level whose block holds both: on an Atlas 800I A2 (8 × 910B, one level) every pair uses HCCS;
on two of them, ``npu:3`` and ``npu:12`` use RoCE. Each NPU reaches the host over its chip's
host link (PCIe), as the system simulator already models it.

A level's ``shape`` says how its links are laid out, which decides what a transfer occupies:

- ``full-mesh``: a dedicated link per pair of NPUs (HCCS on the Atlas 800 A2, SIO between
  A3 dies). A send from ``a`` to ``b`` occupies the lane ``a->b`` only, so the p-1 sends of a
  mesh step run at once. The preset gives the NPU's total bandwidth over the level (as
  msmodeling's ``InterconnectTopology`` does); each of its ``size - 1`` links gets an equal
  share.
- ``switch``: every NPU has one port into a switch (RoCE NICs; A3's HCCS through its switch
  chips). A send occupies the sender's ``tx`` lane and the receiver's ``rx`` lane, so sends
  from one NPU queue behind each other.

Presets live in ``presets/topologies/*.toml``; every number names its source there. The
``efficiency`` of a link (the fraction of its line rate a collective achieves) multiplies its
bandwidth.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hetnpu.devices.names import NPU, SIM_NPU, base_device, device_index
from hetnpu.errors import ConfigError

__all__ = [
    "SHAPES",
    "Level",
    "Link",
    "Topology",
    "list_topologies",
    "load_topology",
    "topology_spec",
]

SHAPES = ("full-mesh", "switch")


@dataclass(frozen=True)
class Link:
    """One kind of link: what a single send over it costs."""

    name: str
    bytes_per_s: float
    """One direction's bandwidth of one lane (per pair on a full mesh, per port on a switch)."""
    latency_s: float
    efficiency: float = 1.0

    @property
    def effective_bytes_per_s(self) -> float:
        return self.bytes_per_s * self.efficiency

    def send_s(self, nbytes: float) -> float:
        """α + n·β: the time of one send of ``nbytes`` over one lane of this link."""
        return self.latency_s + nbytes / self.effective_bytes_per_s


@dataclass(frozen=True)
class Level:
    """``size`` consecutive NPUs joined by ``link`` laid out as ``shape``."""

    name: str
    size: int
    shape: str
    link: Link


@dataclass(frozen=True)
class Topology:
    """NPUs ``npu:0`` … ``npu:{devices-1}`` and the levels joining them, innermost first."""

    name: str
    description: str
    chip: str
    """The NPU preset of every device."""
    devices: int
    levels: tuple[Level, ...]
    family: str = ""
    """The product generation (``a2``, ``a3``): a search for chips compares within one."""

    def device_names(self, kind: str = NPU) -> list[str]:
        """``["npu:0", "npu:1", ...]`` (or ``sim-npu:N`` with ``kind="sim-npu"``)."""
        return [f"{kind}:{i}" for i in range(self.devices)]

    def index(self, device: str) -> int:
        """The number of NPU ``device`` in this topology.

        Raises
        ------
        ConfigError
            ``device`` is not an addressed NPU, or this topology has no such NPU.
        """
        i = device_index(device)
        if i is None or base_device(device) not in (NPU, SIM_NPU):
            raise ConfigError(
                f"topology {self.name!r}: {device!r} is no addressed NPU (write npu:N, "
                f"N from 0 to {self.devices - 1})"
            )
        if i >= self.devices:
            raise ConfigError(
                f"topology {self.name!r} has no device {device!r}: it has {self.devices} NPUs "
                f"(npu:0 .. npu:{self.devices - 1})"
            )
        return i

    def level_of(self, a: str, b: str) -> Level:
        """The innermost level holding NPUs ``a`` and ``b`` (their link).

        Raises
        ------
        ConfigError
            An unknown device, or the same device twice (no link joins a device to itself).
        """
        i, j = self.index(a), self.index(b)
        if i == j:
            raise ConfigError(f"topology {self.name!r}: no link from {a!r} to itself")
        for level in self.levels:
            if i // level.size == j // level.size:
                return level
        raise ConfigError(f"topology {self.name!r}: no link joins {a!r} and {b!r}")

    def lanes(self, src: str, dst: str) -> tuple[tuple[str, Link], ...]:
        """(lane name, link) of what one send from ``src`` to ``dst`` occupies."""
        level = self.level_of(src, dst)
        i, j = self.index(src), self.index(dst)
        name = f"{level.link.name}"
        if level.shape == "full-mesh":
            return ((f"{name} npu:{i}->npu:{j}", level.link),)
        return ((f"{name} npu:{i} tx", level.link), (f"{name} npu:{j} rx", level.link))

    def is_full_mesh(self, devices: list[str] | tuple[str, ...]) -> bool:
        """Whether every pair of ``devices`` has a dedicated link."""
        return all(
            self.level_of(a, b).shape == "full-mesh"
            for k, a in enumerate(devices)
            for b in devices[k + 1 :]
        )

    def describe(self) -> list[str]:
        """One line per level, for listings."""
        return [
            f"{lv.name}: {lv.size} NPUs, {lv.shape}, {lv.link.name} "
            f"{lv.link.bytes_per_s / 1e9:g} GB/s x {lv.link.efficiency:g}, "
            f"{lv.link.latency_s * 1e6:g} us"
            for lv in self.levels
        ]


def _preset_dir() -> Any:
    return resources.files("hetnpu.devices").joinpath("presets").joinpath("topologies")


def list_topologies() -> list[str]:
    """Names of the shipped topology presets."""
    return sorted(
        p.name[: -len(".toml")] for p in _preset_dir().iterdir() if p.name.endswith(".toml")
    )


def topology_spec(topology: Topology | str | os.PathLike[str]) -> Topology:
    """A :class:`Topology` from itself, a preset name or a TOML path."""
    if isinstance(topology, Topology):
        return topology
    return load_topology(topology)


def load_topology(source: str | os.PathLike[str]) -> Topology:
    """Read a topology preset (by name) or TOML file.

    Raises
    ------
    ConfigError
        Unknown preset, unreadable TOML, or a bad or missing key (named with the file).
    """
    text_source = os.fspath(source)
    path = Path(text_source)
    if path.suffix != ".toml" and not path.exists():
        entry = _preset_dir().joinpath(f"{text_source}.toml")
        if not entry.is_file():
            known = ", ".join(list_topologies())
            raise ConfigError(f"unknown topology {text_source!r}; known topologies: {known}")
        where, raw = f"topology preset {text_source!r}", entry.read_text(encoding="utf-8")
    else:
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read topology {text_source!r}: {exc.strerror}") from None
        where = text_source
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return _parse(data, where)


def _parse(data: dict[str, Any], where: str) -> Topology:
    def need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], at: str) -> Any:
        if key not in table:
            raise ConfigError(f"{where}: missing key '{at}{key}'")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(f"{where}: key '{at}{key}' has the wrong type ({value!r})")
        return value

    links_raw = need(data, "links", dict, "")
    links: dict[str, Link] = {}
    for key, t in links_raw.items():
        at = f"links.{key}."
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: [links.{key}] must be a table")
        link = Link(
            name=str(t.get("name", key)),
            bytes_per_s=float(need(t, "bytes_per_s", (int, float), at)),
            latency_s=float(need(t, "latency_s", (int, float), at)),
            efficiency=float(t.get("efficiency", 1.0)),
        )
        if link.bytes_per_s <= 0 or link.latency_s < 0 or not 0 < link.efficiency <= 1:
            raise ConfigError(
                f"{where}: [links.{key}] needs bytes_per_s > 0, latency_s >= 0 and "
                "0 < efficiency <= 1"
            )
        links[key] = link
    devices = need(data, "devices", int, "")
    levels = []
    previous = 1
    for k, lv in enumerate(need(data, "levels", list, "")):
        at = f"levels[{k}]."
        if not isinstance(lv, dict):
            raise ConfigError(f"{where}: levels[{k}] must be a table")
        size = need(lv, "size", int, at)
        shape = need(lv, "shape", str, at)
        link_key = need(lv, "link", str, at)
        if shape not in SHAPES:
            raise ConfigError(f"{where}: {at}shape {shape!r}: choose one of {', '.join(SHAPES)}")
        if link_key not in links:
            raise ConfigError(
                f"{where}: {at}link {link_key!r} is no link; links: {', '.join(links)}"
            )
        if size < 2 or size % previous:
            raise ConfigError(
                f"{where}: {at}size {size} must be at least 2 and a multiple of the inner "
                f"level's size {previous}"
            )
        link = links[link_key]
        if shape == "full-mesh":
            # The preset states the NPU's total bandwidth over the level; each pair link
            # gets an equal share of it.
            link = Link(link.name, link.bytes_per_s / (size - 1), link.latency_s, link.efficiency)
        levels.append(Level(str(lv.get("name", link_key)), size, shape, link))
        previous = size
    if not levels:
        raise ConfigError(f"{where}: a topology needs at least one level")
    if devices < 2 or devices > levels[-1].size:
        raise ConfigError(
            f"{where}: devices = {devices} must be between 2 and the outer level's size "
            f"{levels[-1].size}"
        )
    return Topology(
        name=str(need(data, "name", str, "")),
        description=str(data.get("description", "")),
        chip=str(need(data, "chip", str, "")),
        devices=devices,
        levels=tuple(levels),
        family=str(data.get("family", "")),
    )
