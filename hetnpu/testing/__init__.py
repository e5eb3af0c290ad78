"""Tools for testing hetnpu against bad input: ONNX model mutations and a fuzzing pipeline.

:mod:`~hetnpu.testing.mutations` turns a valid model into a broken one, reproducibly from a
seed; :mod:`~hetnpu.testing.pipeline` runs a mutant through every public entry point (load,
partition, simulate, InferenceSession) in a worker process that a hang, a crash or a memory
blow-up cannot take down with it, and classifies the outcome. The test suite and
``benchmarks/fuzz.py`` share both. Nothing here is imported by the rest of hetnpu.
"""
