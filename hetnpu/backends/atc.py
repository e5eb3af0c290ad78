"""ONNX stage → offline model (.om) with Huawei's ATC, cached by model hash.

The command line follows ascend-facts §4.3: ``atc --model=x.onnx --framework=5
--output=<name without .om> --soc_version=... --input_shape="name:d0,d1;..."
--input_format=NCHW|NCDHW|ND --precision_mode=... --log=error``. ATC needs static shapes (§4.3),
so a symbolic dim is refused here, naming the input.

Precision (``CompileOptions.precision``) -> ``--precision_mode``. The values' meanings are from the
``--precision_mode`` option pages of ATC/AOE (hiascend.com, CANN 6.0.1 .../601/devtools/
auxiliarydevtool/aoepar_16_044.html to CANN 8.0.0 .../en/canncommercial/800/devaids/aoe/
aoepar_16_042.html) and ATC's ``--precision_mode_v2`` page (.../800/devaids/atc/
atlasatcparam_16_0069.html, whose ``origin`` is ``must_keep_origin_dtype``):

* ``"fp16"`` -> ``force_fp16``: every op that has a float16 implementation computes in
  float16. The pages give it as the default for inference but other defaults for training
  scenarios (``must_keep_origin_dtype`` on Atlas A2), so it is passed rather than left to the
  installed version.
* ``"fp32"`` -> ``must_keep_origin_dtype``: every op keeps the model's dtype; an op whose AI Core
  kernel has no float32 variant falls back to an AI CPU kernel or fails the conversion (older
  pages: the mode cannot be used at all then, naming Conv2D). This is the mode the capability
  check (:data:`hetnpu.devices.capability.PRECISIONS`) assumes. ``force_fp32`` is not used: the
  pages equate it with ``cube_fp16in_fp32out``, under which Cube ops take float16 inputs
  whenever they have a float16-in/float32-out kernel, so an "fp32" stage would lose precision.
* ``"int8"`` is refused: ATC does not quantise; a quantised model comes from Huawei's AMCT.

Cache layout: ``<cache_dir>/<key>.onnx`` (the stage as converted, which the .om was built from)
and ``<cache_dir>/<key>.om``. The key hashes the model bytes, the SoC and the precision, so a
second compile of the same stage for the same chip does not run ATC again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
from onnx import helper

from hetnpu.atomic import atomic_write_bytes
from hetnpu.devices.precision_modes import SHORT_TO_ATC
from hetnpu.errors import BackendUnavailableError, ConfigError, ModelError

__all__ = [
    "CANN_HINT",
    "INPUT_FORMATS",
    "PRECISION_MODES",
    "AtcRunner",
    "Converted",
    "StageTensor",
    "SubprocessAtc",
    "atc_args",
    "cache_key",
    "convert",
    "default_cache_dir",
    "find_atc",
    "input_format",
    "precision_mode",
    "stage_inputs",
    "stage_outputs",
]

CANN_HINT = (
    "install Huawei's CANN toolkit (Ascend-cann-toolkit, which ships `atc` and the `acl` Python "
    "module) and run `source <CANN>/set_env.sh` (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh) "
    "in the shell that starts hetnpu; the PyPI package 'pyacl' is unrelated and does not help"
)
"""What to do when ``acl`` or ``atc`` is missing."""

ONNX_FRAMEWORK = 5
"""ATC ``--framework`` value for ONNX (ascend-facts §4.3)."""

PRECISION_MODES: dict[str, str] = dict(SHORT_TO_ATC)
"""CompileOptions.precision -> ATC's ``--precision_mode`` (see the module docstring for why)."""

INPUT_FORMATS = {4: "NCHW", 5: "NCDHW"}
"""Rank of image inputs -> the ``--input_format`` that declares them. ATC's ``--input_format``
page (hiascend.com .../canncommercial/800/devaids/atc/atlasatcparam_16_0015.html) offers NCHW,
NCDHW and ND for ONNX, with ND limited to 4 dims, and takes one value for all inputs."""

_ND_MAX_DIMS = 4

_CACHE_FORMAT = b"hetnpu-atc-2"
"""Bumped whenever the ATC command line changes, so old .om files are not reused."""

_TAIL_LINES = 20


class AtcRunner(Protocol):
    """Runs ``atc`` with ``args`` (without the program name) and reports how it went."""

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class SubprocessAtc:
    """The real ``atc`` binary at ``executable``."""

    executable: str
    timeout_s: float | None = 3600.0
    """Large models take minutes to convert; past this, the conversion is reported as hung."""

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.executable, *args],
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )


def find_atc() -> SubprocessAtc | None:
    """The ``atc`` on PATH (``set_env.sh`` puts it there), or None."""
    path = shutil.which("atc")
    return SubprocessAtc(path) if path else None


@dataclass(frozen=True)
class StageTensor:
    """A graph input or output of a stage: name, static dims and numpy dtype."""

    name: str
    dims: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64)) * self.dtype.itemsize


def _tensor(value: onnx.ValueInfoProto, where: str, *, require_static: bool) -> StageTensor:
    ttype = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        raise ModelError(f"npu: {where} {value.name!r} is not a tensor; ATC converts tensors only")
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(ttype.elem_type))
    except KeyError:
        raise ModelError(
            f"npu: {where} {value.name!r} has ONNX element type {ttype.elem_type}, "
            "which has no numpy equivalent"
        ) from None
    dims: list[int] = []
    for axis, dim in enumerate(ttype.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(dim.dim_value)
        elif require_static:
            shown = dim.dim_param or (dim.dim_value if dim.HasField("dim_value") else "unknown")
            raise ModelError(
                f"npu: {where} {value.name!r} has dim {axis} = {shown!r}; ATC needs static "
                "shapes (bind symbolic dims when loading the model)"
            )
        else:
            dims.append(-1)
    return StageTensor(value.name, tuple(dims), dtype)


def stage_inputs(model: onnx.ModelProto) -> list[StageTensor]:
    """The inputs a caller feeds (graph inputs that are not initializers), with static shapes."""
    inits = {t.name for t in model.graph.initializer}
    return [
        _tensor(v, "input", require_static=True) for v in model.graph.input if v.name not in inits
    ]


def stage_outputs(model: onnx.ModelProto) -> list[StageTensor]:
    """The graph outputs, dims -1 where the model leaves them open (the .om knows them)."""
    return [_tensor(v, "output", require_static=False) for v in model.graph.output]


def atc_args(
    onnx_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    soc_version: str,
    inputs: Sequence[StageTensor],
    precision: str,
) -> list[str]:
    """ATC's arguments to convert ``onnx_path`` into ``<output>.om`` (ascend-facts §4.3).

    Parameters
    ----------
    onnx_path : path-like
        The stage as an ONNX file (``--framework=5``).
    output : path-like
        ``--output``: the .om's path without the suffix; ATC appends ``.om``.
    soc_version : str
        ``--soc_version``, e.g. ``"Ascend910A"``.
    inputs : sequence of StageTensor
        The fed inputs with static dims, for ``--input_shape`` and ``--input_format``.
    precision : str
        ``"fp16"`` (``--precision_mode=force_fp16``) or ``"fp32"``
        (``--precision_mode=must_keep_origin_dtype``).

    Returns
    -------
    list of str
        The arguments, without the program name.

    Raises
    ------
    ConfigError
        ``precision`` is not one ATC is driven with here.
    ModelError
        An input has more dims than any ONNX ``--input_format`` value covers.

    Examples
    --------
    >>> x = StageTensor("x", (1, 3, 224, 224), np.dtype("float32"))
    >>> atc_args("m.onnx", "o/m", "Ascend310P3", [x], "fp32")[3:]  # doctest: +NORMALIZE_WHITESPACE
    ['--soc_version=Ascend310P3', '--input_shape=x:1,3,224,224', '--input_format=NCHW',
     '--precision_mode=must_keep_origin_dtype', '--log=error']
    """
    mode = precision_mode(precision)
    shapes = ";".join(f"{t.name}:{','.join(map(str, t.dims))}" for t in inputs)
    return [
        f"--model={onnx_path}",
        f"--framework={ONNX_FRAMEWORK}",
        f"--output={output}",
        f"--soc_version={soc_version}",
        f"--input_shape={shapes}",
        f"--input_format={input_format(inputs)}",
        f"--precision_mode={mode}",
        "--log=error",
    ]


def input_format(inputs: Sequence[StageTensor]) -> str:
    """The one ``--input_format`` for all ``inputs``: NCDHW if any is 5-D, NCHW if all are 4-D,
    else ND (which ATC limits to 4 dims; see :data:`INPUT_FORMATS`).

    Raises
    ------
    ModelError
        An input has more than 5 dims, which no ONNX value of ``--input_format`` declares.

    Examples
    --------
    >>> f32 = np.dtype("float32")
    >>> input_format([StageTensor("clip", (1, 3, 8, 112, 112), f32), StageTensor("t", (1,), f32)])
    'NCDHW'
    >>> input_format([StageTensor("img", (1, 3, 4, 4), f32), StageTensor("t", (1, 4), f32)])
    'ND'
    """
    too_deep = [t for t in inputs if len(t.dims) > max(INPUT_FORMATS)]
    if too_deep:
        t = too_deep[0]
        raise ModelError(
            f"npu: input {t.name!r} has {len(t.dims)} dims; ATC's --input_format for ONNX "
            f"declares at most 5 (NCDHW), and ND at most {_ND_MAX_DIMS}"
        )
    ranks = {len(t.dims) for t in inputs}
    if max(INPUT_FORMATS) in ranks:
        # ND would be refused for the 5-D input; NCDHW is the only ONNX value that admits it.
        return INPUT_FORMATS[max(INPUT_FORMATS)]
    return INPUT_FORMATS[4] if ranks == {4} else "ND"


def precision_mode(precision: str) -> str:
    """ATC's ``--precision_mode`` for ``CompileOptions.precision`` (see the module docstring).

    Raises
    ------
    ConfigError
        ``precision`` is not one ATC is driven with here (``"int8"`` needs a model quantised
        beforehand, which ATC does not do).
    """
    try:
        return PRECISION_MODES[precision]
    except KeyError:
        why = (
            " (ATC does not quantise; quantise the model with AMCT first)"
            if precision == "int8"
            else ""
        )
        raise ConfigError(
            f"npu: CompileOptions.precision {precision!r} is not supported by the ATC path{why}; "
            f"use one of {', '.join(PRECISION_MODES)}"
        ) from None


def cache_key(model_bytes: bytes, soc_version: str, precision: str) -> str:
    """Hex digest naming the cached .om of ``model_bytes`` for ``soc_version`` and ``precision``."""
    h = hashlib.sha256(_CACHE_FORMAT)
    for part in (soc_version.encode(), precision.encode(), model_bytes):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:32]


def default_cache_dir() -> Path:
    """The per-user cache of .om files: ``$XDG_CACHE_HOME/hetnpu/om`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hetnpu" / "om"


@dataclass(frozen=True)
class Converted:
    """Where the .om of a stage is, and whether ATC had to run for it."""

    om_path: Path
    onnx_path: Path
    cache_hit: bool


def convert(
    model: onnx.ModelProto,
    *,
    soc_version: str,
    precision: str,
    atc: AtcRunner,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Converted:
    """Convert ``model`` to .om with ``atc``, or reuse the cached one.

    Parameters
    ----------
    model : onnx.ModelProto
        The stage, with static input shapes.
    soc_version : str
        ATC's ``--soc_version``, e.g. ``"Ascend910A"`` or ``"Ascend310P3"``; it must name the
        chip the .om will run on.
    precision : str
        ``"fp16"`` or ``"fp32"`` (see :func:`precision_mode`).
    atc : AtcRunner
        Runs ATC (the real binary, or a stand-in in tests).
    cache_dir : path-like, optional
        Where .om files are kept; :func:`default_cache_dir` when None.

    Returns
    -------
    Converted

    Raises
    ------
    ModelError
        An input has a symbolic dim, or more dims than ``--input_format`` declares.
    ConfigError
        ``precision`` is not one ATC is driven with here.
    BackendUnavailableError
        ATC failed, hung or could not be started; the message carries the tail of its output.
    """
    precision_mode(precision)
    inputs = stage_inputs(model)
    input_format(inputs)
    data = model.SerializeToString(deterministic=True)
    key = cache_key(data, soc_version, precision)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    om_path, onnx_path = cache / f"{key}.om", cache / f"{key}.onnx"
    if om_path.is_file() and onnx_path.is_file():
        return Converted(om_path, onnx_path, cache_hit=True)
    atomic_write_bytes(onnx_path, data)
    # ATC writes into a private directory; only a finished .om is moved under the final name.
    with tempfile.TemporaryDirectory(prefix=f".{key}.", dir=cache) as tmp:
        args = atc_args(onnx_path, Path(tmp) / key, soc_version, inputs, precision)
        result = _run(atc, args, model, soc_version)
        produced = sorted(Path(tmp).glob("*.om"))
        if result.returncode != 0 or len(produced) != 1:
            why = f"exit {result.returncode}" if result.returncode else f"{len(produced)} .om files"
            raise BackendUnavailableError(
                f"npu: atc failed ({why}) converting stage {model.graph.name!r} for "
                f"{soc_version}{_opset_note(model)}: {_tail(result)}"
            )
        # ATC wrote the file itself; a rename within one filesystem is atomic, as the
        # writers of hetnpu.atomic are.
        os.replace(produced[0], om_path)
    return Converted(om_path, onnx_path, cache_hit=False)


def _run(
    atc: AtcRunner, args: list[str], model: onnx.ModelProto, soc: str
) -> subprocess.CompletedProcess[str]:
    try:
        return atc(args)
    except subprocess.TimeoutExpired as exc:
        raise BackendUnavailableError(
            f"npu: atc did not finish converting stage {model.graph.name!r} for {soc} "
            f"within {exc.timeout} s"
        ) from None
    except OSError as exc:
        raise BackendUnavailableError(f"npu: cannot run atc ({exc}); {CANN_HINT}") from None


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or "").strip() or (result.stdout or "").strip()
    if not text:
        return "(atc printed nothing)"
    return " | ".join(text.splitlines()[-_TAIL_LINES:])


def _opset_note(model: onnx.ModelProto) -> str:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    # CANN 8.0 documents ONNX opsets 11-15 for ATC (ascend-facts §4.3); say so when outside.
    return f" (ONNX opset {opset}; ATC documents 11-15)" if opset and not 11 <= opset <= 15 else ""
