"""Device presets: TOML files in ``devices/presets/``, user files by path, inheritance, overrides.

A preset file holds the keys of one spec (:mod:`hetnpu.devices.spec`) plus three keys the
loader consumes:

``kind``
    ``"npu"`` (the default), ``"cpu"`` or ``"gpu"``: which spec the keys make.
``inherits``
    A preset name or a path (relative to the file) to start from; the file's keys override it,
    a nested table (``[host_link]``) key by key.
``[sources]``
    Key → where its value comes from (shown by ``hetnpu devices show``).

Any problem is a :class:`~hetnpu.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import difflib
import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from hetnpu.devices.names import CPU, GPU, NPU
from hetnpu.devices.spec import CpuSpec, GpuSpec, NpuSpec, flat_keys, validate_spec
from hetnpu.errors import ConfigError

__all__ = [
    "KINDS",
    "Preset",
    "flatten_table",
    "load_cpu",
    "load_gpu",
    "load_npu",
    "load_preset",
    "names",
]

KINDS: Mapping[str, type[NpuSpec] | type[CpuSpec] | type[GpuSpec]] = MappingProxyType(
    {NPU: NpuSpec, CPU: CpuSpec, GPU: GpuSpec}
)
"""Spec class of each preset ``kind``."""

_LOADER_KEYS = ("kind", "inherits", "sources")
_OVERRIDE = "override"
_UNSOURCED = frozenset({"name", "description", "inherits"})
"""Keys that identify a spec rather than measure it: no source expected."""


@dataclass(frozen=True)
class Preset:
    """A loaded, validated preset and where each of its values came from."""

    spec: NpuSpec | CpuSpec | GpuSpec
    kind: str
    """``"npu"``, ``"cpu"`` or ``"gpu"``."""
    label: str
    """``"ascend910 (presets/ascend910.toml)"``: how messages name it."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Flat key (``host_link.bytes_per_s``) → the source of its value."""


@dataclass(frozen=True)
class _Doc:
    """One TOML document to read: a packaged preset or a user's file."""

    ident: str  # what makes two references the same file, for cycle detection
    shown: str  # the path as messages show it
    stem: str
    base_dir: Path | None  # where a relative ``inherits`` path starts from
    read: Callable[..., str]  # read(encoding=...) -> the text


@dataclass
class _Merged:
    data: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    kind: str | None = None


def _preset_dir() -> Any:
    return resources.files("hetnpu.devices").joinpath("presets")


def _looks_like_path(ref: str | os.PathLike[str]) -> bool:
    if isinstance(ref, os.PathLike):
        return True
    return ref.endswith(".toml") or "/" in ref or os.sep in ref


def _all_names() -> list[str]:
    return sorted(
        p.name[: -len(".toml")] for p in _preset_dir().iterdir() if p.name.endswith(".toml")
    )


def _locate(ref: str | os.PathLike[str], base_dir: Path | None) -> _Doc:
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise ConfigError(f"{path}: no such chip file")
        return _Doc(str(path.resolve()), str(path), path.stem, path.parent, path.read_text)
    res = _preset_dir().joinpath(f"{ref}.toml")
    if not res.is_file():
        raise ConfigError(
            f"unknown preset {str(ref)!r}; known presets: {', '.join(_all_names())} "
            "(or give a path to a .toml file)"
        )
    return _Doc(f"preset:{ref}", f"presets/{ref}.toml", str(ref), None, res.read_text)


def _parse(doc: _Doc) -> dict[str, Any]:
    try:
        text = doc.read(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{doc.shown}: cannot read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise ConfigError(f"{doc.shown}: invalid TOML: {exc}") from None


def flatten_table(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted keys: ``{"host_link": {"bytes_per_s": 1}}`` →
    ``{"host_link.bytes_per_s": 1}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            out.update(flatten_table(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _resolve(doc: _Doc, chain: tuple[_Doc, ...] = ()) -> _Merged:
    """Read ``doc`` and everything it inherits, base first; keys of later files win."""
    if any(d.ident == doc.ident for d in chain):
        path = " -> ".join(d.shown for d in (*chain, doc))
        raise ConfigError(f"{chain[0].shown}: inheritance cycle: {path}")
    raw = _parse(doc)
    parent, kind, sources = raw.pop("inherits", None), raw.pop("kind", None), raw.pop("sources", {})
    if parent is not None and not isinstance(parent, str):
        raise ConfigError(
            f"{doc.shown}: inherits: expected a preset name or a path, got {parent!r}"
        )
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"{doc.shown}: kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(sources, Mapping):
        raise ConfigError(f'{doc.shown}: sources: expected a table of key = "source"')
    merged = _Merged()
    if parent:
        try:
            base = _locate(parent, doc.base_dir)
        except ConfigError as exc:
            raise ConfigError(f"{doc.shown}: inherits: {exc}") from None
        merged = _resolve(base, (*chain, doc))
    if kind and merged.kind and kind != merged.kind:
        raise ConfigError(
            f"{doc.shown}: a {kind} preset cannot inherit {parent!r}, a {merged.kind} one"
        )
    merged.kind = kind or merged.kind
    for key, value in raw.items():
        old = merged.data.get(key)
        merged.data[key] = (
            {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
        )
    for key in flatten_table(raw):
        merged.origins[key] = doc.shown
        if key not in _UNSOURCED:  # an inherited source describes the inherited value, not this one
            merged.sources[key] = f"set in {doc.shown} (no source given)"
    merged.data.pop("inherits", None)
    if parent:
        merged.data["inherits"] = parent
        merged.data["name"] = raw.get("name", doc.stem)  # a derived chip is named after its file
    known = flat_keys(KINDS[merged.kind or NPU])
    for key, text in flatten_table(sources).items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{doc.shown}: sources.{key}: names no parameter{hint}")
        if not isinstance(text, str):
            raise ConfigError(f"{doc.shown}: sources.{key}: expected a string, got {text!r}")
        merged.sources[key] = text
    return merged


def _apply_overrides(
    merged: _Merged, overrides: Mapping[str, Any], cls: type[Any], label: str, given: str
) -> None:
    known = [k for k in flat_keys(cls) if k != "inherits"]
    for key, value in overrides.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            # The CLI cuts a line at 600 characters: point at the full list, not print it.
            hint = (
                f"; close matches: {', '.join(close)}"
                if close
                else f"; `hetnpu devices show {given}` lists the keys"
            )
            raise ConfigError(f"{label}: unknown key {key!r} in overrides{hint}")
        outer, _, inner = key.partition(".")
        if inner:
            table = merged.data.get(outer)
            merged.data[outer] = {**(table if isinstance(table, dict) else {}), inner: value}
        else:
            merged.data[key] = value
        merged.origins[key] = _OVERRIDE
        merged.sources[key] = f"{_OVERRIDE}: {value!r}"


def load_preset(
    name_or_path: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    kind: str | None = None,
) -> Preset:
    """Load a preset by name, or a TOML file by path, with inheritance and overrides.

    Parameters
    ----------
    name_or_path
        A preset name (``"ascend910"``, see :func:`names`) or a path to a ``.toml`` file (a
        string ending in ``.toml`` or containing a ``/``, or a ``Path``).
    overrides
        Spec key → value, applied last, as ``--set KEY=VALUE`` does: values may be strings
        (``"16,16,16"``, ``"2.4e12"``); nested keys are dotted (``host_link.bytes_per_s``).
    kind
        Require this kind (``"npu"``, ``"cpu"``, ``"gpu"``); ``None`` accepts any.

    Raises
    ------
    ConfigError
        A missing file, bad TOML (with its line), an inheritance cycle, an unknown preset or
        key (with close matches), or an invalid value; the message names the file and the key.
    """
    doc = _locate(name_or_path, None)
    merged = _resolve(doc)
    actual = merged.kind or NPU
    cls = KINDS[actual]
    name = merged.data.get("name", doc.stem)
    label = f"{name} ({doc.shown})"
    if kind is not None and actual != kind:
        wanted = ", ".join(names(kind))
        raise ConfigError(f"{label}: is a {actual} preset, not {kind}; {kind} presets: {wanted}")
    # The hint names the chip as the user gave it: a preset name or a file's path.
    _apply_overrides(merged, overrides or {}, cls, label, os.fspath(name_or_path))
    spec = validate_spec(cls, merged.data, label, merged.origins)
    return Preset(spec, actual, label, MappingProxyType(dict(merged.sources)))


def names(kind: str | None = None) -> list[str]:
    """Names of the packaged presets, sorted; only those of ``kind`` when given."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
    every = _all_names()
    if kind is None:
        return every
    return [n for n in every if (_resolve(_locate(n, None)).kind or NPU) == kind]


CPU_PRESET = "cpu_x86"
"""The generic host CPU a system is given when the caller names none."""
GPU_PRESET = "gpu_datacentre"
"""The generic GPU a system is given when the caller names none."""


def npu_spec(chip: NpuSpec | str | os.PathLike[str]) -> NpuSpec:
    """``chip`` itself if it is a spec, else the NPU preset or TOML file it names."""
    return chip if isinstance(chip, NpuSpec) else load_npu(chip)


def cpu_spec(cpu: CpuSpec | str | os.PathLike[str] | None = None) -> CpuSpec:
    """``cpu`` itself if it is a spec, the preset or file it names, or the generic CPU."""
    if isinstance(cpu, CpuSpec):
        return cpu
    return _default_cpu() if cpu is None else load_cpu(cpu)


def gpu_spec(gpu: GpuSpec | str | os.PathLike[str] | None = None) -> GpuSpec:
    """``gpu`` itself if it is a spec, the preset or file it names, or the generic GPU."""
    if isinstance(gpu, GpuSpec):
        return gpu
    return _default_gpu() if gpu is None else load_gpu(gpu)


@functools.cache
def _default_cpu() -> CpuSpec:
    return load_cpu(CPU_PRESET)


@functools.cache
def _default_gpu() -> GpuSpec:
    return load_gpu(GPU_PRESET)


def load_npu(
    name_or_path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> NpuSpec:
    """The chip spec of an NPU preset or file (see :func:`load_preset`)."""
    return cast(NpuSpec, load_preset(name_or_path, overrides, kind=NPU).spec)


def load_cpu(
    name_or_path: str | os.PathLike[str] = CPU_PRESET, overrides: Mapping[str, Any] | None = None
) -> CpuSpec:
    """The spec of a CPU preset or file; the generic x86 server CPU by default."""
    return cast(CpuSpec, load_preset(name_or_path, overrides, kind=CPU).spec)


def load_gpu(
    name_or_path: str | os.PathLike[str] = GPU_PRESET,
    overrides: Mapping[str, Any] | None = None,
) -> GpuSpec:
    """The spec of a GPU preset or file; the generic data-centre GPU by default."""
    return cast(GpuSpec, load_preset(name_or_path, overrides, kind=GPU).spec)
