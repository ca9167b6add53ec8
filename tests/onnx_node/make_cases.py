"""Vendors the ONNX project's backend node tests for the operators mlctl runs.

Run from the repository root (needs the `onnx` package, 1.23 used here):
    python3 tests/onnx_node/make_cases.py
For every case in onnx.backend.test.case.node whose nodes all use operators
mlctl supports (the list below mirrors runtime::ops::SUPPORTED) and whose
tensors have element types mlctl holds, writes tests/onnx_node/cases/NAME/
with model.onnx, input_N.pb and output_N.pb, as ONNX's own runner lays them
out. Cases left out, and why, go to tests/onnx_node/excluded.txt.

The test cases are the ONNX project's (Apache-2.0, see LICENSE-onnx.txt).
"""

import pathlib
import shutil
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

warnings.filterwarnings("ignore")
HERE = pathlib.Path(__file__).resolve().parent
SUPPORTED = {
    ("", op) for op in [
        "Abs", "Add", "ArgMax", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Div",
        "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gemm", "HardSigmoid",
        "Identity", "LayerNormalization", "LeakyRelu", "Log", "MatMul", "Max", "Mean", "Min",
        "Mul", "Neg", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
        "MatMulInteger", "QLinearMatMul", "Reciprocal", "ReduceSum", "Relu", "Reshape", "Shape", "Sigmoid", "Slice",
        "Softmax", "Softplus", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "Transpose",
        "Unsqueeze", "Where", "And", "Ceil", "Cos", "Dropout", "Floor", "Gelu",
        "GlobalAveragePool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSwish", "Less",
        "LessOrEqual", "Not", "Or", "Pow", "Range", "ReduceL1", "ReduceL2", "ReduceLogSumExp",
        "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Round", "Selu",
        "Sign", "Sin", "Size", "Softsign", "Split", "Tile", "Xor", "Conv", "MaxPool", "AveragePool",
        "BatchNormalization", "ArgMin", "CumSum", "GatherElements", "LogSoftmax", "OneHot",
        "PRelu", "Pad", "Trilu", "ScatterND", "LSTM", "GRU", "RNN", "If", "Resize",
    ]
} | {("ai.onnx.ml", op) for op in ["ArrayFeatureExtractor", "Scaler", "ZipMap"]}
# Element types mlctl's tensors hold (int8 in 16-bit storage, uint16 in
# 32-bit storage; no uint64, string, float8 or 4-bit tensors yet).
TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64,
         onnx.TensorProto.INT32, onnx.TensorProto.INT16, onnx.TensorProto.UINT8, onnx.TensorProto.INT8,
         onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.UINT16,
         onnx.TensorProto.BOOL, onnx.TensorProto.UINT32}


# Variants of supported operators that mlctl's inference runtime leaves out
# on purpose; listed with the reason in excluded.txt.
VARIANTS = {
    "test_batchnorm_epsilon_training_mode": "BatchNormalization in training mode",
    "test_batchnorm_example_training_mode": "BatchNormalization in training mode",
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool's Indices output",
    "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool's Indices output",
    "test_resize_downsample_scales_cubic_antialias": "Resize with antialias",
    "test_resize_downsample_scales_linear_antialias": "Resize with antialias",
    "test_resize_downsample_sizes_cubic_antialias": "Resize with antialias",
    "test_resize_downsample_sizes_linear_antialias": "Resize with antialias",
}


def node_ops(graph):
    for n in graph.node:
        yield (n.domain if n.domain != "ai.onnx" else "", n.op_type)
        for a in n.attribute:
            if a.HasField("g"):
                yield from node_ops(a.g)


def tensor_types(model):
    g = model.graph
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.HasField("tensor_type"):
            yield v.type.tensor_type.elem_type
        else:
            yield None
    for n in g.node:
        for a in n.attribute:
            if a.name == "to":
                yield a.i


def main():
    out = HERE / "cases"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    kept, excluded = [], []
    for case in collect_testcases(None):
        model = case.model
        ops = set(node_ops(model.graph))
        missing = sorted(f"{d or 'ai.onnx'}::{o}" for d, o in ops - SUPPORTED)
        if missing:
            continue
        if case.name in VARIANTS:
            excluded.append(f"{case.name}: {VARIANTS[case.name]} is not supported")
            continue
        bad = sorted({str(t) for t in tensor_types(model) if t not in TYPES})
        if bad:
            names = [onnx.TensorProto.DataType.Name(int(t)) if t != "None" else "non-tensor" for t in bad]
            excluded.append(f"{case.name}: element types {', '.join(names)}")
            continue
        arrays = [x for inputs, outputs in (case.data_sets or []) for x in list(inputs) + list(outputs)]
        if not all(isinstance(x, np.ndarray) for x in arrays):
            excluded.append(f"{case.name}: non-tensor inputs or outputs (sequences, maps)")
            continue
        for i, (inputs, outputs) in enumerate(case.data_sets or []):
            d = out / (case.name if i == 0 else f"{case.name}_{i}")
            d.mkdir()
            onnx.save(model, d / "model.onnx")
            for k, x in enumerate(inputs):
                (d / f"input_{k}.pb").write_bytes(numpy_helper.from_array(x).SerializeToString())
            for k, y in enumerate(outputs):
                (d / f"output_{k}.pb").write_bytes(numpy_helper.from_array(y).SerializeToString())
            if case.rtol is not None or case.atol is not None:
                (d / "tolerance.txt").write_text(f"{case.rtol or 1e-3} {case.atol or 1e-7}\n")
            kept.append(d.name)
    (HERE / "excluded.txt").write_text("\n".join(sorted(excluded)) + "\n")
    print(f"{len(kept)} cases written, {len(excluded)} excluded")


if __name__ == "__main__":
    main()
