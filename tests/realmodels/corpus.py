"""The real-model corpus: ONNX files shipped in public PyPI wheels (``tests/data/realmodels``,
``SOURCES.md`` there), each with the input shapes it is bound to and a feed that looks like
its real input.

Shared by ``tests/realmodels`` and ``benchmarks/realmodels.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).parents[1] / "data" / "realmodels"


@dataclass(frozen=True)
class RealModel:
    file: str
    shapes: dict[str, list[int]]
    feeds: Callable[[], dict[str, np.ndarray]]
    what: str

    @property
    def path(self) -> Path:
        return DATA / self.file


def _speech_chunk() -> dict[str, np.ndarray]:
    # 32 ms at 16 kHz: a 220 Hz voiced tone with two harmonics, an onset envelope and noise.
    rng = np.random.default_rng(1)
    t = np.arange(512) / 16000
    tone = sum(a * np.sin(2 * np.pi * f * t) for a, f in ((0.3, 220), (0.15, 440), (0.05, 660)))
    wave = tone * np.minimum(1, t / 0.01) + 0.01 * rng.standard_normal(512)
    return {
        "input": wave.astype(np.float32)[None],
        "state": np.zeros((2, 1, 128), np.float32),
        "sr": np.array(16000, np.int64),
    }


def _file_bytes() -> dict[str, np.ndarray]:
    # Magika's features: the first and last 1024 bytes of a file, padded with token 256. The
    # file is a Python source (this module).
    raw = Path(__file__).read_bytes().strip()
    head, tail = list(raw[:1024]), list(raw[-1024:])
    head += [256] * (1024 - len(head))
    tail = [256] * (1024 - len(tail)) + tail
    return {"bytes": np.array([head + tail], np.int32)}


def _page(h: int, w: int, lines: int, seed: int) -> np.ndarray:
    """A light page with dark word blocks on text lines, RGB in [0, 1], NCHW."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 0.92) + 0.03 * rng.standard_normal((h, w))
    pitch = h // lines
    for row in range(lines):
        top = row * pitch + pitch // 4
        x = int(rng.integers(2, 8))
        while x < w - 8:
            word = int(rng.integers(6, 24))
            img[top : top + pitch // 2, x : min(x + word, w - 2)] = 0.1
            x += word + int(rng.integers(3, 8))
    rgb = np.clip(np.stack([img] * 3), 0, 1)
    return rgb[None].astype(np.float32)


def _text_line() -> dict[str, np.ndarray]:
    # PP-OCR's direction classifier: a 48x192 line crop, (x - 0.5) / 0.5.
    return {"x": ((_page(48, 192, 1, 2) - 0.5) / 0.5).astype(np.float32)}


def _document() -> dict[str, np.ndarray]:
    # PP-OCR's detector: a page crop with ImageNet normalisation.
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return {"x": ((_page(64, 64, 3, 3) - mean) / std).astype(np.float32)}


CORPUS: dict[str, RealModel] = {
    "silero_vad": RealModel(
        "silero_vad.onnx",
        {"input": [1, 512], "state": [2, 1, 128]},
        _speech_chunk,
        "voice activity (If on the sample rate; STFT conv, encoder convs and an LSTM inside)",
    ),
    "magika": RealModel(
        "magika_standard_v3_3.onnx",
        {"bytes": [1, 2048]},
        _file_bytes,
        "file-type classifier over byte ids",
    ),
    "rapidocr_cls": RealModel(
        "rapidocr_cls_mobile_v2.onnx",
        {"x": [1, 3, 48, 192]},
        _text_line,
        "text-line direction classifier (MobileNetV3)",
    ),
    "rapidocr_det": RealModel(
        "rapidocr_det_v4.onnx",
        {"x": [1, 3, 64, 64]},
        _document,
        "text detector (PP-OCRv4 DB head)",
    ),
}
