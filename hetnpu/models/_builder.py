"""A thin layer over ``onnx.helper`` that the model builders share.

It keeps the node list, the initializers and a seeded numpy generator together, and names
things the way PyTorch's exporter does (node ``/layer1/layer1.0/conv1/Conv``, its output
``/layer1/layer1.0/conv1/Conv_output_0``, weight ``layer1.0.conv1.weight``), so the graphs look
like real exports to every later pass.

Batch-norm running statistics are *calibrated*, as one recalibrates BN after changing a
network's weights: a twin of the graph in which every BatchNormalization normalises with the
statistics of its own input runs once in onnxruntime on a seeded random input, and each BN
gets the mean and variance its input had there (plus small perturbations). With fixed
statistics (mean 0, var 1) the residual sums of a random ResNet-50 grow block after block and its
activations reach the hundreds, too close to fp16's 65504 for an NPU test model.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hetnpu.errors import ConfigError
from hetnpu.graph import WEIGHTS_KEY

__all__ = [
    "FLOAT",
    "INT64",
    "OPSET",
    "GraphBuilder",
    "calibration_batch",
    "check_positive",
    "count_params",
    "io",
    "shapes_only",
]

OPSET = 17
PRODUCER = "hetnpu.models"

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64

_BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default
_JITTER = 0.05  # relative size of the random perturbations of BN parameters and statistics
RESIDUAL_GAIN = 0.2
"""gamma of the last BatchNormalization of a residual branch (:meth:`GraphBuilder.batch_norm`)."""

_SHAPES_ONLY = contextvars.ContextVar("hetnpu_models_shapes_only", default=False)

# BatchNormalization inputs 3 and 4 are running statistics (buffers), not learned parameters.
_BN_BUFFER_SLOTS = (3, 4)


class GraphBuilder:
    """Collect nodes and seeded weights, then emit a checked ``onnx.ModelProto``.

    Parameters
    ----------
    seed : int
        Seed of the ``numpy.random.default_rng`` every weight is drawn from, in build order.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.shapes_only = _SHAPES_ONLY.get()
        """No weight values: initializers carry dims and type only (see :func:`shapes_only`)."""
        self.nodes: list[onnx.NodeProto] = []
        self.weights: dict[str, np.ndarray] = {}
        """Initializer values by name, in build order; made protos only once, at the end."""
        self._names: set[str] = set()
        self._bn_stats: list[tuple[str, str, str, int]] = []
        """(BN input, running_mean name, running_var name, channels), set by calibration."""

    # -- weights ---------------------------------------------------------------------------

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as the initializer ``name`` and return the name."""
        self.weights[name] = array
        return name

    def normal(self, name: str, shape: Sequence[int], std: float) -> str:
        """A float32 initializer drawn from N(0, std²)."""
        if self.shapes_only:
            return self.weight(name, np.broadcast_to(np.float32(0.0), tuple(shape)))
        values = self.rng.standard_normal(tuple(shape), dtype=np.float32)
        values *= np.float32(std)
        return self.weight(name, values)

    def kaiming(self, name: str, shape: Sequence[int], fan_in: int) -> str:
        """He/Kaiming-normal weights, std = sqrt(2 / fan_in), which keep ReLU nets at unit scale."""
        return self.normal(name, shape, float(np.sqrt(2.0 / fan_in)))

    # -- nodes -----------------------------------------------------------------------------

    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        scope: str,
        *,
        out: str | None = None,
        **attrs: object,
    ) -> str:
        """Append ``op_type`` named ``{scope}/{op_type}`` and return its output's name.

        A repeated name gets ``_1``, ``_2``, ... as the PyTorch exporter does; the output is
        ``{name}_output_0`` unless ``out`` names it.
        """
        base = f"{scope}/{op_type}"
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        output = out or f"{name}_output_0"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))
        return output

    def constant(self, scope: str, value: np.ndarray) -> str:
        """A ``Constant`` node holding ``value`` (shapes, axes and scalars, not parameters)."""
        return self.node("Constant", [], scope, value=numpy_helper.from_array(value))

    # -- layers that several models use ------------------------------------------------------

    def conv(
        self,
        x: str,
        scope: str,
        prefix: str,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        group: int = 1,
        *,
        padding: int | tuple[int, int] | None = None,
        bias: bool = False,
    ) -> str:
        """A ``torch.nn.Conv2d`` with He-normal weights, bias-free unless ``bias``.

        ``kernel`` and ``padding`` are an int or (height, width), as in torch; padding defaults
        to kernel // 2 per dimension. A bias is drawn from N(0, 0.01²), as :meth:`gemm`'s.
        """
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding is None:
            padding = (kh // 2, kw // 2)
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        fan_in = cin // group * kh * kw
        inputs = [x, self.kaiming(f"{prefix}.weight", (cout, cin // group, kh, kw), fan_in)]
        if bias:
            inputs.append(self.normal(f"{prefix}.bias", (cout,), 0.01))
        return self.node(
            "Conv",
            inputs,
            scope,
            dilations=[1, 1],
            group=group,
            kernel_shape=[kh, kw],
            pads=[ph, pw, ph, pw],
            strides=[stride, stride],
        )

    def batch_norm(
        self,
        x: str,
        scope: str,
        prefix: str,
        channels: int,
        gain: float = 1.0,
        epsilon: float = _BN_EPS,
    ) -> str:
        """Inference-mode BatchNormalization: gamma≈gain, beta≈0, statistics set by calibration.

        ``epsilon`` is the module's ``eps`` (torch's default 1e-5; torchvision's Inception
        networks use 1e-3).

        The last BatchNormalization of a residual branch takes :data:`RESIDUAL_GAIN`, as
        trained residual networks end up with small gains there (and zero-init-residual
        training starts from zero): otherwise every block doubles the activations' scale, and
        a deep random network amplifies rounding more than any trained one does.
        """
        gamma = gain * (1.0 + _JITTER * self.rng.standard_normal(channels, dtype=np.float32))
        beta = _JITTER * self.rng.standard_normal(channels, dtype=np.float32)
        mean, var = f"{prefix}.running_mean", f"{prefix}.running_var"
        self._bn_stats.append((x, mean, var, channels))
        ins = [x, self.weight(f"{prefix}.weight", gamma), self.weight(f"{prefix}.bias", beta)]
        return self.node(
            "BatchNormalization", [*ins, mean, var], scope, epsilon=epsilon, momentum=0.9
        )

    def gemm(
        self, x: str, scope: str, prefix: str, fin: int, fout: int, out: str | None = None
    ) -> str:
        """A ``torch.nn.Linear`` as exported: Gemm with weight [out, in] and ``transB=1``."""
        w = self.kaiming(f"{prefix}.weight", (fout, fin), fin)
        b = self.normal(f"{prefix}.bias", (fout,), 0.01)
        return self.node("Gemm", [x, w, b], scope, out=out, alpha=1.0, beta=1.0, transB=1)

    # -- the model ----------------------------------------------------------------------------

    def model(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        doc: str,
        calibration: dict[str, np.ndarray] | None = None,
    ) -> onnx.ModelProto:
        """Wrap the collected graph as an opset-17 model, validated by the onnx checker.

        ``calibration`` (input arrays by input name, any batch) is required when the graph has
        batch norms: their running statistics are measured on it.
        """
        if self.shapes_only:
            return self._shapes_model(name, inputs, outputs)
        if self._bn_stats:
            if calibration is None:
                raise ValueError(f"{name}: batch norms need a calibration input")
            self._calibrate(calibration)
        model = onnx.ModelProto()
        model.graph.name, model.graph.doc_string = name, doc
        model.graph.node.extend(self.nodes)
        model.graph.input.extend(inputs)
        model.graph.output.extend(outputs)
        model.producer_name = PRODUCER
        model.opset_import.append(helper.make_opsetid("", OPSET))
        # The IR version that came with the opset, so older onnxruntime builds load the file too.
        model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
        # The checker serialises whatever it is given; checking the graph with the weights as
        # typed inputs validates every node, type and shape without copying 100s of MB around.
        skeleton = onnx.ModelProto()
        skeleton.CopyFrom(model)
        skeleton.graph.input.extend(self._weight_infos())
        onnx.checker.check_model(skeleton, full_check=True)
        model.graph.initializer.extend(
            numpy_helper.from_array(array, key) for key, array in self.weights.items()
        )
        return model

    def _shapes_model(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
    ) -> onnx.ModelProto:
        """The graph with value-less float initializers: enough to count and to simulate (the
        model says so in its metadata, which the loader reads), not to run. Integer tensors keep
        their values: shapes, axes and indices are what shape inference reads."""
        inits = []
        for key, array in self.weights.items():
            if array.dtype.kind != "f":
                inits.append(numpy_helper.from_array(np.ascontiguousarray(array), key))
                continue
            tensor = onnx.TensorProto(name=key, dims=array.shape)
            tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
            inits.append(tensor)
        for _, mean, var, channels in self._bn_stats:
            inits += [
                onnx.TensorProto(name=n, dims=[channels], data_type=FLOAT) for n in (mean, var)
            ]
        graph = helper.make_graph(self.nodes, name, list(inputs), list(outputs), initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        helper.set_model_props(model, {WEIGHTS_KEY: "absent"})
        return model

    def _weight_infos(self) -> list[onnx.ValueInfoProto]:
        return [
            helper.make_tensor_value_info(
                key, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape
            )
            for key, array in self.weights.items()
        ]

    def _calibrate(self, feeds: dict[str, np.ndarray]) -> None:
        """Measure each BN input's per-channel mean and variance and store them as its stats."""
        import onnxruntime as ort  # only builders with batch norms pay for the import

        twin_nodes: list[onnx.NodeProto] = []
        for node in self.nodes:
            if node.op_type == "BatchNormalization":
                twin_nodes.extend(_batch_stat_norm(node))
            else:
                twin_nodes.append(node)
        probes = list(dict.fromkeys(stat[0] for stat in self._bn_stats))
        # Weights go in as fed inputs rather than initializers: no serialisation of them.
        graph = helper.make_graph(
            twin_nodes,
            "calibration",
            [helper.make_tensor_value_info(k, FLOAT, v.shape) for k, v in feeds.items()]
            + self._weight_infos(),
            [helper.make_tensor_value_info(p, FLOAT, None) for p in probes],
        )
        twin = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        twin.ir_version = helper.find_min_ir_version_for(list(twin.opset_import))
        opts = ort.SessionOptions()
        # One thread and rounded results: the same seed gives the same bytes run after run.
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(
            twin.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        measured = dict(zip(probes, sess.run(probes, {**feeds, **self.weights}), strict=True))
        for x, mean_name, var_name, _ in self._bn_stats:
            values = measured[x]
            mean = values.mean(axis=(0, 2, 3), dtype=np.float64)
            var = values.var(axis=(0, 2, 3), dtype=np.float64)
            # Small perturbations, so a BN is never an exact standardisation of its input.
            mean += _JITTER * np.sqrt(var) * self.rng.standard_normal(mean.shape)
            var *= 1.0 + _JITTER * self.rng.uniform(-1.0, 1.0, var.shape)
            self.weight(mean_name, _rounded(mean))
            self.weight(var_name, _rounded(np.maximum(var, 1e-3)))


def _batch_stat_norm(bn: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Nodes that normalise like ``bn`` but with the statistics of the batch they see."""
    x, gamma, beta = bn.input[:3]
    t = f"{bn.name}/calib"
    axes = [0, 2, 3]  # per channel of an NCHW activation
    make = helper.make_node
    return [
        make("ReduceMean", [x], [f"{t}/mean"], axes=axes, keepdims=1),
        make("Sub", [x, f"{t}/mean"], [f"{t}/centred"]),
        make("Mul", [f"{t}/centred", f"{t}/centred"], [f"{t}/square"]),
        make("ReduceMean", [f"{t}/square"], [f"{t}/var"], axes=axes, keepdims=1),
        make("Constant", [], [f"{t}/eps"], value=numpy_helper.from_array(np.float32(_BN_EPS))),
        make("Add", [f"{t}/var", f"{t}/eps"], [f"{t}/var_eps"]),
        make("Sqrt", [f"{t}/var_eps"], [f"{t}/std"]),
        make("Div", [f"{t}/centred", f"{t}/std"], [f"{t}/normed"]),
        make(
            "Constant", [], [f"{t}/hw"], value=numpy_helper.from_array(np.array([1, 2], np.int64))
        ),
        make("Unsqueeze", [gamma, f"{t}/hw"], [f"{t}/gamma"]),
        make("Unsqueeze", [beta, f"{t}/hw"], [f"{t}/beta"]),
        make("Mul", [f"{t}/normed", f"{t}/gamma"], [f"{t}/scaled"]),
        make("Add", [f"{t}/scaled", f"{t}/beta"], [bn.output[0]]),
    ]


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Within the block, builders draw no weights and return models that cannot run.

    Their initializers have names, dims and types but no data, so :func:`count_params` on such a
    model is instant even for BERT-base's 110 M parameters.
    """
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def calibration_batch(image_size: int) -> int:
    """Images to calibrate on: about as many pixels as one 224x224 image, at least one.

    Small images leave late stages with 1x1 maps, where one image gives one sample per channel.
    """
    return int(min(16, max(1, np.ceil((224 / image_size) ** 2))))


def _rounded(values: np.ndarray) -> np.ndarray:
    """float32 with 4 significant digits, so last-bit noise of a kernel never changes the bytes."""
    return np.array([float(f"{v:.4g}") for v in values], dtype=np.float32)


def check_positive(model: str, **sizes: int) -> None:
    """Raise :class:`ConfigError` naming the first size that is not a positive integer."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{model}: {key} must be a positive integer, got {value!r}")


def io(name: str, elem_type: int, dims: Sequence[int], dynamic_batch: bool) -> onnx.ValueInfoProto:
    """A graph input/output; dim 0 becomes the symbolic ``"batch"`` when ``dynamic_batch``."""
    shape: list[int | str] = list(dims)
    if dynamic_batch:
        shape[0] = "batch"
    return helper.make_tensor_value_info(name, elem_type, shape)


def count_params(model: onnx.ModelProto) -> int:
    """Learned parameters of ``model``, counted the way ``torch`` counts ``parameters()``.

    Floating-point initializers are counted; batch-norm running statistics (buffers) and integer
    tensors (shapes, indices) are not.

    Parameters
    ----------
    model : onnx.ModelProto
        Any model; built here or loaded from a file.

    Returns
    -------
    int
        The number of parameter elements.
    """
    buffers = {
        node.input[i]
        for node in model.graph.node
        if node.op_type == "BatchNormalization"
        for i in _BN_BUFFER_SLOTS
        if i < len(node.input)
    }
    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
    return sum(
        int(np.prod(t.dims, dtype=np.int64))
        for t in model.graph.initializer
        if t.data_type in floats and t.name not in buffers
    )
