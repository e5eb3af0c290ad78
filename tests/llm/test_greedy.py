"""Greedy decoding through hetnpu's sessions on the simulated NPU matches onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from hetnpu import InferenceSession
from hetnpu.models.decoder import build_decoder, cache_names

from .conftest import tiny_config

STEPS = 32
PROMPT = 6
CONFIG = tiny_config(num_hidden_layers=2)


def _ort(model):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return lambda feeds: dict(zip(names, sess.run(None, feeds), strict=True))


def _hetnpu(model, precision):
    sess = InferenceSession(model, ["sim-npu", "cpu"], precision=precision)
    names = [o.name for o in model.graph.output]
    return lambda feeds: dict(zip(names, sess.run(None, feeds), strict=True))


def _generate(runner, prompt: np.ndarray, steps: int, record_logits: list | None = None):
    """Greedy tokens, the KV cache of each step fed back as the next step's past."""
    batch, p = prompt.shape
    pos = np.tile(np.arange(p, dtype=np.int64), (batch, 1))
    out = runner(build_decoder(CONFIG, "prefill", batch=batch, seq=p, attention="decomposed"))(
        {"input_ids": prompt, "position_ids": pos}
    )
    tokens = []
    for step in range(steps):
        if record_logits is not None:
            record_logits.append(out["logits"])
        token = out["logits"].argmax(-1).astype(np.int64)[:, None]
        tokens.append(token)
        if step == steps - 1:
            break
        kv = p + step
        model = build_decoder(CONFIG, "decode", batch=batch, kv_len=kv, attention="decomposed")
        feeds = {"input_ids": token, "position_ids": np.full((batch, 1), kv, np.int64)}
        for i in range(CONFIG["num_hidden_layers"]):
            past_k, past_v, present_k, present_v = cache_names(i)
            feeds[past_k], feeds[past_v] = out[present_k], out[present_v]
        out = runner(model)(feeds)
    return np.concatenate(tokens, axis=1)


def test_greedy_tokens_match_onnxruntime_for_32_steps_fp32():
    prompt = np.random.default_rng(3).integers(0, CONFIG["vocab_size"], (2, PROMPT))
    want = _generate(_ort, prompt, STEPS)
    got = _generate(lambda m: _hetnpu(m, "fp32"), prompt, STEPS)
    np.testing.assert_array_equal(got, want)
    assert len(set(want.ravel().tolist())) > 3  # a sequence that moves, not one token repeated


def test_greedy_tokens_match_onnxruntime_fp32_and_fp16_logits_close():
    prompt = np.random.default_rng(5).integers(0, CONFIG["vocab_size"], (1, PROMPT))
    steps = 8
    want_logits: list = []
    want = _generate(_ort, prompt, steps, want_logits)
    got = _generate(lambda m: _hetnpu(m, "fp32"), prompt, steps)
    np.testing.assert_array_equal(got, want)
    # fp16 run of the same prefill: logits within fp16's tolerance of the fp32 reference.
    model = build_decoder(CONFIG, "prefill", batch=1, seq=PROMPT, attention="decomposed")
    pos = np.arange(PROMPT, dtype=np.int64)[None]
    half = _hetnpu(model, "fp16")({"input_ids": prompt, "position_ids": pos})["logits"]
    np.testing.assert_allclose(half, want_logits[0], rtol=0, atol=2e-2)
    assert not np.array_equal(half, want_logits[0])  # fp16 numerics ran on the NPU
