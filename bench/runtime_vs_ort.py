"""mlctl's ONNX runtime against ONNX Runtime, in one run, same inputs, same
thread count, both warm; prints p50 latencies and their ratio.

    python3 bench/make_real_model_cases.py   # once: MiniLM-L3 and the int8 models into bench_data/
    python3 bench/runtime_vs_ort.py [--threads 2] [--runs 50] [--rounds 5] [--only minilm]

ratio = mlctl p50 / ONNX Runtime p50 (below 1.0: mlctl is faster). Each case
is timed by the two engines in alternating rounds (--runs split over
--rounds), and each side's figure is the median of its rounds' p50s, so
that drift of the machine's speed hits both alike. `best` is the ratio of
the two sides' fastest rounds: on a shared virtual machine whole processes
land in a slow mode now and then (the same int8 MiniLM 1 x 16 run took
0.75 ms in one process and 1.25 ms in the next), and the fastest round is
the engine with the least interference.
"""

import argparse
import json
import pathlib
import platform
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[1]


def minilm():
    found = sorted((ROOT / "bench_data" / "minilm").rglob("*.onnx"))
    return found[0] if found else None


def cases():
    import pandas as pd

    test = pd.read_parquet(ROOT / "sample_data" / "test.parquet")
    x = test.drop(columns=["target"]).to_numpy(np.float32)
    models = [("mlp", ROOT / "sample_data" / "model.onnx"), ("mlp int8", ROOT / "bench_data" / "model.int8.onnx")]
    for name, path in models:
        for batch in (1, 32, 1024):
            rows = np.resize(x, (batch, x.shape[1])).astype(np.float32)
            yield f"{name} b{batch}", path, {"X": rows}
    encoder = minilm()
    if encoder is None:
        print("MiniLM-L3 not found: run bench/make_real_model_cases.py first")
        return
    rng = np.random.default_rng(0)
    for name, path in [("minilm", encoder), ("minilm int8", ROOT / "bench_data" / "minilm_l3.int8.onnx")]:
        for batch, seq in ((1, 16), (1, 128), (8, 128)):
            ids = rng.integers(1000, 30000, (batch, seq)).astype(np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            yield f"{name} {batch}x{seq}", path, {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def ort_session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_ort(session, feeds, runs, warmup):
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def build_bench():
    """Builds the Rust side once (the release profile CI also uses) and
    returns its executable."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", "runtime", "--no-run", "--message-format=json", "-q"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "runtime" \
                and message.get("executable"):
            return message["executable"]
    raise SystemExit("cargo did not build the runtime bench")


def time_mlctl(executable, path, inputs, threads, runs, warmup):
    out = subprocess.run(
        [executable, str(path), str(inputs),
         "--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["p50_ms"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--only", default="")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    executable = build_bench()
    flags = ""
    if platform.system() == "Linux":
        info = pathlib.Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
        flags = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if f in info)
    print(f"threads {args.threads}, {args.rounds} alternating rounds of {max(args.runs // args.rounds, 1)} warm runs each, median of round medians; ONNX Runtime {ort.__version__}; CPU flags: {flags}")
    print(f"{'case':<22}{'mlctl ms':>12}{'ORT ms':>12}{'ratio':>8}{'best':>8}")
    results = {}
    for name, path, feeds in cases():
        if args.only not in name:
            continue
        # The two sides take turns, round by round, so that a change in the
        # machine's speed (this shared machine's moves by 20-50%) hits both:
        # each side's figure is the median of its rounds' medians.
        session = ort_session(path, args.threads)
        ours, theirs = [], []
        with tempfile.TemporaryDirectory() as tmp:
            inputs = pathlib.Path(tmp) / "inputs.npz"
            np.savez(inputs, **feeds)
            per_round = max(args.runs // args.rounds, 1)
            for _ in range(args.rounds):
                ours.append(time_mlctl(executable, path, inputs, args.threads, per_round, args.warmup))
                theirs.append(time_ort(session, feeds, per_round, args.warmup))
        best = min(ours) / min(theirs)
        ours, theirs = statistics.median(ours), statistics.median(theirs)
        results[name] = ours
        print(f"{name:<22}{ours:>12.3f}{theirs:>12.3f}{ours / theirs:>8.2f}{best:>8.2f}", flush=True)
    for size in ("1x16", "1x128", "8x128"):
        fp32, int8 = results.get(f"minilm {size}"), results.get(f"minilm int8 {size}")
        if fp32 and int8:
            print(f"mlctl int8 speed-up over fp32, MiniLM-L3 {size}: {fp32 / int8:.2f}x")


if __name__ == "__main__":
    main()
