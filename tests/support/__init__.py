"""Tools for testing hetnpu: small float models built from a list of nodes
(:mod:`~tests.support.graphs`), and, against bad input, ONNX model mutations and a fuzzing
pipeline.

:mod:`~tests.support.mutations` turns a valid model into a broken one, reproducibly from a
seed; :mod:`~tests.support.pipeline` runs a mutant through every public entry point (load,
partition, simulate, InferenceSession) in a worker process that a hang, a crash or a memory
blow-up cannot take down with it, and classifies the outcome. The test suite and
``benchmarks/fuzz.py`` share both. It lives with the tests, not in the shipped package:
nothing in hetnpu imports it.
"""
