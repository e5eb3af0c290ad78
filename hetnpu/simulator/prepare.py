"""What the chip sees of a model before it runs: the epilogues ATC fuses into their producer,
the TransData it inserts in front of Conv-fed inputs, and which ops the NPU refuses. Each op's
roofline floor is :mod:`~hetnpu.simulator.bounds`.
"""

from __future__ import annotations

import math

from hetnpu.devices.names import NPU
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.formats import transdata_node
from hetnpu.simulator.frontend import onnx_parser_applies
from hetnpu.simulator.lowering import FUSE_INTO, FUSED_EPILOGUES, Unsupported, dev_nbytes
from hetnpu.simulator.tiler import Precision
from hetnpu.simulator.ubfusion import chain_outputs, elementwise_chains

__all__ = [
    "VIEW_OPS",
    "bias_add_input",
    "conv_residuals",
    "device_nbytes",
    "epilogue_map",
    "fused_writes",
    "fusion_map",
    "fusions",
    "input_transdata",
    "kernel_aliases",
    "matmul_ub_fusion",
    "npu_refusal",
    "residual_adds",
]


MatmulUb = tuple[dict[str, str], dict[str, str], dict[str, str]]
"""What :func:`matmul_ub_fusion` returns."""


def fusions(
    graph: Graph,
    ub: bool = True,
    mm: MatmulUb | None = None,
    residual: dict[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(fused node → the node whose kernel runs it, root of each fused elementwise chain →
    the tensor its kernel writes instead of its own).

    Activations and BatchNormalization fold into a Cube op (Conv, Gemm, MatMul) or into a
    residual Add (:func:`residual_adds`), as ATC's buffer fusion does; chains of the
    elementwise ops left over fold into their first op (:mod:`hetnpu.simulator.ubfusion`).
    ``mm`` and ``residual`` are :func:`matmul_ub_fusion` and :func:`residual_adds` of the
    graph when the caller has them already (the simulator computes each once).
    """
    epilogues = epilogue_map(graph, ub, mm, residual)
    chains = elementwise_chains(graph, epilogues)
    return {**epilogues, **chains}, chain_outputs(graph, chains)


def fusion_map(graph: Graph) -> dict[str, str]:
    """Fused node → the node whose kernel runs it (the first half of :func:`fusions`)."""
    return fusions(graph)[0]


def fused_writes(graph: Graph) -> dict[str, str]:
    """Root of each fused elementwise chain → the tensor its kernel writes instead of its own."""
    return fusions(graph)[1]


def epilogue_map(
    graph: Graph,
    ub: bool = True,
    mm: MatmulUb | None = None,
    residual: dict[str, str] | None = None,
) -> dict[str, str]:
    """Epilogue node → the Cube op or residual Add it folds into (single consumer, first input).

    A MatMul's bias Add (:func:`bias_add_input`) is an epilogue of its MatMul, whichever input
    of the Add the MatMul feeds.
    """
    mm = matmul_ub_fusion(graph, ub) if mm is None else mm
    residual = residual_adds(graph, ub, mm) if residual is None else residual
    const_epi, _, transposes = mm
    fused: dict[str, str] = {}
    for node in graph:
        if node.is_constant or not node.inputs:
            continue
        bias_src = _matmul_epilogue_source(graph, node, const_epi, transposes)
        if bias_src is not None:
            prod = graph.producer(bias_src)
            if prod is not None:
                fused[node.name] = fused.get(prod.name, prod.name)
            continue
        if node.op_type not in FUSED_EPILOGUES:
            continue
        prod = graph.producer(node.inputs[0])
        if prod is None or len(graph.consumers(node.inputs[0])) != 1:
            continue
        root = fused.get(prod.name, prod.name)
        if root in residual or (
            graph.nodes[root].op_type in FUSE_INTO and not graph.nodes[root].is_constant
        ):
            fused[node.name] = root
    return fused


_BIAS_INTO: frozenset[str] = frozenset({"MatMul", "Gemm"})


def _matmul_epilogue_source(
    graph: Graph, node: Node, const_epi: dict[str, str], transposes: dict[str, str]
) -> str | None:
    """The MatMul-side input of ``node`` when it is a free epilogue of a MatMul kernel: a bias
    Add, an elementwise op with a constant broadcast operand, or a fused Transpose."""
    bias = bias_add_input(graph, node)
    if bias is not None:
        return bias
    return const_epi.get(node.name) or transposes.get(node.name)


def bias_add_input(graph: Graph, node: Node) -> str | None:
    """The MatMul output an Add folds into its MatMul as the bias, or None.

    CANN's graph fusion ``MatMulBiasAddFusionPass`` fuses MatMul/MatMulV2/BatchMatMul/
    BatchMatMulV2 and a following BiasAdd/Add into the MatMul, the bias then added in the
    Cube's output path (in fp32, inside the MatMul) when one of the Add's inputs is 1-D and
    its size is the MatMul output's last dimension (CANN 8.0.0 graph fusion reference,
    "MatMulBiasAddFusionPass", https://www.hiascend.com/document/detail/en/canncommercial/800/
    graph/graphubfusionref/atlasrr_30_0025.html; the 9.0.0 page lists BatchMatMulV3 too).
    An ONNX MatMul of a 3-D activation and a 2-D weight is ATC's BatchMatMulV2, which takes a
    bias input (its AttentionLnQKV fusion reads the BatchMatMulV2's bias input). The fused
    kernel writes the biased result: the Add launches nothing and moves no data of its own.
    """
    if node.op_type != "Add" or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    ta, tb = graph.tensors.get(a), graph.tensors.get(b)
    if ta is None or tb is None or ta.shape is None or tb.shape is None:
        return None
    for mine, bias in ((a, tb), (b, ta)):
        tm = graph.tensors[mine]
        if tm.is_constant or not bias.is_constant or len(bias.shape) != 1 or not tm.shape:
            continue
        if bias.shape[0] != tm.shape[-1]:
            continue
        prod = graph.producer(mine)
        if prod is None or prod.is_constant or prod.op_type not in _BIAS_INTO:
            continue
        if len(graph.consumers(mine)) != 1 or mine in graph.outputs:
            continue
        return mine
    return None


def residual_adds(graph: Graph, ub: bool = True, mm: MatmulUb | None = None) -> dict[str, str]:
    """Residual Adds folded into the Cube op that produces one of their inputs: Add node →
    the input tensor it takes straight from that op's output path.

    CANN's buffer-fusion pass ``TbeConvDoubleInFusionPass`` (pattern
    ``TbeConvElemwiseReluFusion``: convolution → elementwise with a second input →
    elementwise) adds the residual in the convolution's epilogue and writes only the sum. On
    coupled chips the simulator does the same (:func:`conv_residuals`: the convolution's
    program reads each output block's residual into UB and the Vector unit adds it on the way
    out); on split chips, and for a MatMul's UB-fused Add, it times the Add after its Cube op
    as reading the residual and adding it, with no write of its own. Either way the Cube op's
    write stands for the fused kernel's one write of the sum.
    """
    out: dict[str, str] = {}
    for node in graph:
        if node.op_type != "Add" or node.is_constant or len(node.inputs) != 2:
            continue
        a, b = node.inputs
        ta, tb = graph.tensors.get(a), graph.tensors.get(b)
        if a == b or ta is None or tb is None or ta.is_constant or tb.is_constant:
            continue
        if ta.shape != tb.shape:
            continue
        # Both inputs may come from convolutions (a ResNet downsample block): the one that runs
        # last adds the other, which exists by then.
        fed = [(r.index, mine) for mine in (a, b) if (r := _conv_root(graph, mine))]
        if fed:
            out[node.name] = max(fed)[1]
    out.update((matmul_ub_fusion(graph, ub) if mm is None else mm)[1])
    return out


def _conv_root(graph: Graph, tensor: str) -> Node | None:
    """The Conv whose kernel writes ``tensor`` (through the epilogues folded into it), when
    ``tensor`` has no other reader; else None."""
    prod = graph.producer(tensor)
    if prod is None or len(graph.consumers(tensor)) != 1:
        return None
    root = prod
    # Through epilogues already folded into a Cube op (BatchNormalization, ReLU...).
    while root.op_type in FUSED_EPILOGUES and root.inputs:
        up = graph.producer(root.inputs[0])
        if up is None or len(graph.consumers(root.inputs[0])) != 1:
            break
        root = up
    return root if root.op_type == "Conv" and not root.is_constant else None


def conv_residuals(graph: Graph, residual: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Conv node → (its fused residual Add, the residual tensor the epilogue reads), for the
    Adds of :func:`residual_adds` (``residual``) fed by a convolution (coupled chips add the
    residual in the convolution's epilogue; a MatMul's UB-fused Add stays timed on its own)."""
    out: dict[str, tuple[str, str]] = {}
    for add, mine in residual.items():
        root = _conv_root(graph, mine)
        if root is None or root.name in out:
            continue
        other = next((t for t in graph.node(add).inputs if t != mine), None)
        prod = graph.producer(other) if other else None
        if other is None or (prod is not None and prod.index > root.index):
            continue  # the residual would not exist yet when the convolution runs
        out[root.name] = (add, other)
    return out


MATMUL_UB_ELEMWISE = 2
"""Elementwise ops one ``TbeBatchMatmulElementWiseFusionPass`` kernel takes after its
BatchMatMul/GEMM: Elemwise then Elemwise1 (pattern 1; CANN 8.0.0 graph and UB fusion reference,
https://www.hiascend.com/document/detail/en/canncommercial/800/graph/graphubfusionref/atlasrr_30_0119.html)."""

_MATMUL_UB_OPS = frozenset({"Add", "Div"})
"""The pass's Elemwise types that ONNX has (FusedMulAdd, RealDiv and ReluGrad have no ONNX
counterpart; Relu is already an epilogue of every Cube op)."""


def matmul_ub_fusion(graph: Graph, ub: bool = True) -> MatmulUb:
    """The UB fusions of a MatMul/Gemm kernel with what follows it, as three maps
    (node → the MatMul-side tensor it continues from):

    - elementwise ops with a constant broadcast operand (a scale ``Div``, an ``Add`` of a
      constant), which the kernel applies in its output path: fused, free;
    - ``Add`` ops with a second, non-constant input (a residual of the same shape, an
      attention mask that broadcasts), which the kernel reads and adds: timed like a
      convolution's residual Add (:func:`residual_adds`), no launch and no write of its own;
    - ``Transpose`` ops reached from the kernel's output through views only (BERT's
      Reshape → Transpose of the heads): fused, the kernel writing its rows at their
      transposed addresses. A Transpose that also swaps the last two axes (a key's Kᵀ) is
      taken too: ATC hands the BatchMatMul that reads it the transposed operand (adj_x2).

    Sources (CANN 8.0.0 graph and UB fusion reference): ``TbeBatchMatmulElementWiseFusionPass``
    fuses BatchMatMul/BatchMatMulV2/GEMM with one or two following Elemwise ops (Add, Div,
    RealDiv, Relu, FusedMulAdd, the second Add, Relu or FusedMulAdd; static shapes), on Atlas
    inference products (the 310P) and training products: :data:`MATMUL_UB_ELEMWISE`.
    ``MatmulConfusiontransposeUbFusion`` and ``BatchMatmulConfusiontransposeUbFusion`` fuse a
    MatMul/BatchMatMul with the ConfusionTransposeD (Reshape + Transpose) after it
    (https://www.hiascend.com/document/detail/en/canncommercial/800/graph/graphubfusionref/atlasrr_30_0122.html);
    the 310P's ``AttentionLnQKVONNXFusionPass`` matches BatchMatMulV2 → ConfusionTransposeD in
    ONNX BERTs, so that is what ATC makes of them. A MatMul's bias Add
    (``MatMulBiasAddFusionPass``, :func:`bias_add_input`) and the Cube epilogues
    (:data:`~hetnpu.simulator.lowering.FUSED_EPILOGUES`) do not count against the limit.

    ``ub`` False (a chip whose Cube and Vector cores are split, the 910B: Atlas A2) gives
    three empty maps: these are TBE UB fusions, and neither the 8.0.0 nor the 9.0.0 reference
    lists ``TbeBatchMatmulElementWiseFusionPass`` for the A2, whose MatMulV3 kernels are
    Ascend C (the bias fusion, a graph fusion, is listed for it and stays).
    """
    if not ub:
        return {}, {}, {}
    root_of: dict[str, str] = {}  # node -> the MatMul/Gemm whose kernel runs it
    count: dict[str, int] = {}
    const_epi: dict[str, str] = {}
    second: dict[str, str] = {}
    transposes: dict[str, str] = {}

    def kernel_root(tensor: str) -> str | None:
        prod = graph.producer(tensor)
        if prod is None or prod.is_constant:
            return None
        if len(graph.consumers(tensor)) != 1 or tensor in graph.outputs:
            return None
        if prod.op_type in _BIAS_INTO:
            return prod.name
        return root_of.get(prod.name)

    for node in graph:
        if node.is_constant or not node.inputs or not node.outputs:
            continue
        if node.op_type in _BIAS_INTO:
            continue
        bias_src = bias_add_input(graph, node)
        if bias_src is not None:
            root = kernel_root(bias_src)
            if root is not None:
                root_of[node.name] = root
            continue
        if node.op_type in FUSED_EPILOGUES:
            root = kernel_root(node.inputs[0])
            if root is not None:
                root_of[node.name] = root
            continue
        if node.op_type == "Transpose":
            src = node.inputs[0]
            while True:
                prod = graph.producer(src)
                if prod is None or prod.op_type not in VIEW_OPS or len(graph.consumers(src)) != 1:
                    break
                src = prod.inputs[0]
            if kernel_root(src) is not None:
                transposes[node.name] = src
            continue
        if node.op_type not in _MATMUL_UB_OPS or len(node.inputs) != 2:
            continue
        out = graph.tensors.get(node.outputs[0])
        if out is None or out.shape is None:
            continue
        for mine, other in (node.inputs, node.inputs[::-1]):
            root = kernel_root(mine)
            if root is None or count.get(root, 0) >= MATMUL_UB_ELEMWISE:
                continue
            t = graph.tensors.get(other)
            if t is None or t.shape is None or math.prod(t.shape) > math.prod(out.shape):
                continue
            if t.is_constant:
                if math.prod(t.shape) == math.prod(out.shape):
                    continue  # a weight-sized operand: not a broadcast
                const_epi[node.name] = mine
            elif node.op_type == "Add":
                second[node.name] = mine
            else:
                continue
            root_of[node.name] = root
            count[root] = count.get(root, 0) + 1
            break
    return const_epi, second, transposes


VIEW_OPS: frozenset[str] = frozenset(
    {"Dropout", "Flatten", "Identity", "Reshape", "Squeeze", "Unsqueeze"}
)
"""Ops whose (first) output is their first input's memory under other dims: no kernel runs,
nothing is read or written (GE removes them from the graph it runs)."""


def kernel_aliases(
    graph: Graph,
    fused: dict[str, str],
    residual: dict[str, str],
    ub: bool = True,
    mm: MatmulUb | None = None,
) -> dict[str, str]:
    """Tensor -> the tensor that holds its data on the chip, for the outputs of epilogues
    folded into a Cube op, of residual Adds folded into a convolution, and of views
    (:data:`VIEW_OPS`: a reshaped tensor is the tensor it reshapes).

    A fused kernel writes its epilogue's result into one buffer: a Conv with its
    BatchNormalization and ReLU writes the ReLU's output, and a convolution with a residual
    Add (``TbeConvDoubleInFusionPass``, :func:`residual_adds`) writes the sum, never the
    intermediate tensors. The simulator times such a kernel as the Cube op's write (under the
    Cube op's output name), so the consumers of the epilogue's output read the data the Cube
    op wrote: for L2 residency those names are one tensor. Chains of other elementwise ops
    (:mod:`~hetnpu.simulator.ubfusion`) already write their end tensor under its own name.
    """
    alias: dict[str, str] = {}
    const_epi, _, transposes = matmul_ub_fusion(graph, ub) if mm is None else mm
    for node in graph:
        if node.op_type in VIEW_OPS and node.inputs and node.inputs[0] and node.outputs:
            alias[node.outputs[0]] = alias.get(node.inputs[0], node.inputs[0])
            continue
        root = fused.get(node.name)
        if root is None or not node.inputs or not node.outputs:
            continue
        bias_src = _matmul_epilogue_source(graph, node, const_epi, transposes)
        if node.op_type not in FUSED_EPILOGUES and bias_src is None:
            continue
        if root not in residual and graph.nodes[root].op_type not in FUSE_INTO:
            continue
        first = bias_src or node.inputs[0]
        src = alias.get(first, first)
        for t in node.outputs[:1]:
            if t:
                alias[t] = src
    for name, mine in residual.items():
        node = graph.nodes[name]
        src = alias.get(mine, mine)
        for t in node.outputs[:1]:
            if t:
                alias[t] = src
    # An epilogue folded into a residual Add (its ReLU) aliased the Add's output before the
    # Add itself was resolved: follow the chains to their end.
    for t in list(alias):
        seen = {t}
        while alias[t] in alias and alias[t] not in seen:
            seen.add(alias[t])
            alias[t] = alias[alias[t]]
    return alias


def input_transdata(graph: Graph) -> list[Node]:
    """Synthetic TransData nodes (NCHW → NC1HWC0) for 4-D float inputs that feed a Conv.

    ATC converts such inputs to the 5HD layout in a TransData task before the first
    convolution (ascend-facts §3.5); weights are converted offline and cost nothing.

    Left out: AIPP (ATC ``--insert_op_conf``), where the image enters as 8-bit pixels that the
    first convolution's load converts (FE's UB fusion merges the Aipp node into that Conv2D,
    hicann/ge ffdcbc9f ``ub_fusion_graph_merge.cc``) and no TransData runs. Tried on the
    calibration table's AIPP rows (ResNet-18 and ResNet-50 on the 310P3; RGB bytes read at
    MTE2's rate, the conversion's own rate being unpublished): ResNet-18 at batch 64 went from
    1.03 to 1.10 of its measured throughput, ResNet-50 at batch 64 from 0.72 to 0.74, and the
    chip's rows from 10.8% to 10.9% MAPE with the overheads refit.
    """
    out = []
    for name in graph.inputs:
        t = graph.tensors[name]
        if not (t.dtype.startswith("float") and t.shape is not None and len(t.shape) == 4):
            continue
        if any(c.op_type == "Conv" for c in graph.consumers(name)):
            out.append(transdata_node(name, "NC1HWC0", name=f"TransData:{name}"))
    return out


def npu_refusal(node: Node, graph: Graph, precision: str) -> str | None:
    if not onnx_parser_applies():  # torch_npu calls kernels directly: the lowering decides
        return None
    try:
        from hetnpu.devices.capability import can_run
    except ImportError:  # capability rules not installed: rely on the lowering registry alone
        return None
    verdict = can_run(NPU, node, graph, precision=precision)
    return None if verdict.supported else (verdict.reason or "not supported on the NPU")


def device_nbytes(graph: Graph, name: str, prec: Precision) -> int:
    """Device bytes of a tensor, 0 when its shape is unknown (an unused optional output)."""
    try:
        return dev_nbytes(graph, name, prec)
    except Unsupported:
        return 0
