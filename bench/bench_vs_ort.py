"""`mlctl bench` against ONNX Runtime's own measurement (Python API), same
models, same inputs, same machine, one after the other: p50 side by side.

    cargo build --release
    python3 bench/make_real_model_cases.py   # once: MiniLM-L3 into bench_data/
    python3 bench/bench_vs_ort.py [--threads 2] [--runs 100]

mlctl bench generates its inputs from the model's shapes (floats in [-1, 1),
token ids in 1000..2000, masks of ones); ONNX Runtime gets arrays made the
same way. The runtime's speed target itself is the runtime issue's
(bench/runtime_vs_ort.py); this script checks that `mlctl bench` reports
what an independent measurement sees.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
MLCTL = TARGET / "release" / "mlctl"


def ort_p50(path, feeds, threads, runs, warmup=5):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        s.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def mlctl_p50(path, batch, threads, runs, seq_len):
    out = subprocess.run(
        [str(MLCTL), "--format", "json", "bench", str(path), "--batch-sizes", str(batch), "--runs", str(runs),
         "--threads", str(threads), "--seq-len", str(seq_len)],
        check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    row = next(s for s in report["sections"] if s["key"] == "latency")["rows"][0]
    return row["p50"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = []
    for batch in (1, 32):
        cases.append((f"sample MLP b{batch}", ROOT / "sample_data" / "model.onnx", batch, 0,
                      {"X": rng.uniform(-1, 1, (batch, 30)).astype(np.float32)}))
    found = sorted((ROOT / "bench_data" / "minilm").rglob("*.onnx"))
    if found:
        for batch, seq in ((1, 16), (8, 128)):
            ids = rng.integers(1000, 2000, (batch, seq)).astype(np.int64)
            cases.append((f"MiniLM-L3 {batch}x{seq}", found[0], batch, seq,
                          {"input_ids": ids, "attention_mask": np.ones_like(ids)}))
    print(f"p50 ms, {args.threads} threads, {args.runs} runs; ONNX Runtime {ort.__version__}")
    print(f"{'case':<22}{'mlctl bench':>14}{'ORT':>10}{'ratio':>8}")
    for name, path, batch, seq, feeds in cases:
        ours = mlctl_p50(path, batch, args.threads, args.runs, seq or 128)
        theirs = ort_p50(path, feeds, args.threads, args.runs)
        print(f"{name:<22}{ours:>14.3f}{theirs:>10.3f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
