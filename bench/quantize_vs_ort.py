"""mlctl quantize against ONNX Runtime's quantize_dynamic on MiniLM-L3 and
the sample MLP, side by side: size, accuracy (the MLP's test split) or
cosine similarity of MiniLM's sentence embeddings against fp32 (random
token ids, 8 x 128), and latency of each int8 model in its own engine.

    python3 bench/make_real_model_cases.py   # once: MiniLM-L3 into bench_data/
    cargo build --release && python3 bench/quantize_vs_ort.py [--threads 2] [--rounds 6]

Every model is also run by ONNX Runtime, mlctl's included (interop).
"""

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort
import pandas as pd
from onnxruntime.quantization import QuantType, quantize_dynamic

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
MLCTL = TARGET / "release" / "mlctl"


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def p50(fn, runs=20):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def cosine_rows(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def mlctl_quantize(model, out, extra=()):
    subprocess.run([str(MLCTL), "-q", "quantize", str(model), "-o", str(out), *extra], check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp())
    rows = []

    # The sample MLP: accuracy on the test split.
    mlp = ROOT / "sample_data" / "model.onnx"
    test = pd.read_parquet(ROOT / "sample_data" / "test.parquet")
    x = test.drop(columns=["target"]).to_numpy(np.float32)
    y = test["target"].to_numpy()
    variants = {"fp32": mlp}
    quantize_dynamic(str(mlp), str(tmp / "mlp_ort.onnx"), weight_type=QuantType.QInt8)
    variants["ORT quantize_dynamic"] = tmp / "mlp_ort.onnx"
    quantize_dynamic(str(mlp), str(tmp / "mlp_ort_pc.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    variants["ORT quantize_dynamic per channel"] = tmp / "mlp_ort_pc.onnx"
    mlctl_quantize(mlp, tmp / "mlp_mlctl.onnx")
    variants["mlctl quantize"] = tmp / "mlp_mlctl.onnx"
    for name, path in variants.items():
        labels = session(path, args.threads).run(None, {"X": x})[0]
        rows.append(("MLP", name, path.stat().st_size, f"accuracy {np.mean(labels == y):.4f}"))

    # MiniLM-L3: cosine of the sentence embeddings against fp32.
    found = sorted((ROOT / "bench_data" / "minilm").rglob("*.onnx"))
    if found:
        model = found[0]
        rng = np.random.default_rng(0)
        ids = rng.integers(1000, 30000, (8, 128)).astype(np.int64)
        ids[:, 0], ids[:, -1] = 101, 102
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        reference = session(model, args.threads).run(None, feeds)
        out_names = [o.name for o in session(model, 1).get_outputs()]
        pooled = out_names.index("461") if "461" in out_names else len(out_names) - 1
        variants = {"fp32": model}
        quantize_dynamic(str(model), str(tmp / "minilm_ort.onnx"), weight_type=QuantType.QInt8)
        variants["ORT quantize_dynamic"] = tmp / "minilm_ort.onnx"
        quantize_dynamic(str(model), str(tmp / "minilm_ort_pc.onnx"), weight_type=QuantType.QInt8, per_channel=True)
        variants["ORT quantize_dynamic per channel"] = tmp / "minilm_ort_pc.onnx"
        mlctl_quantize(model, tmp / "minilm_mlctl.onnx")
        variants["mlctl quantize"] = tmp / "minilm_mlctl.onnx"
        # Static: calibrated on other random ids.
        calibration = rng.integers(1000, 30000, (16, 128)).astype(np.int64)
        calibration[:, 0], calibration[:, -1] = 101, 102
        np.savez(tmp / "calibration.npz", input_ids=calibration, attention_mask=np.ones_like(calibration))
        mlctl_quantize(model, tmp / "minilm_static.onnx",
                       ["--mode", "static", "--calibration", str(tmp / "calibration.npz"), "--calibrate", "minmax"])
        variants["mlctl quantize --mode static (minmax)"] = tmp / "minilm_static.onnx"
        np.savez(tmp / "tokens.npz", **feeds)
        for name, path in variants.items():
            s = session(path, args.threads)
            out = s.run(None, feeds)
            cos = cosine_rows(reference[pooled], out[pooled])
            ms = p50(lambda: s.run(None, feeds))
            rows.append(("MiniLM-L3", name, path.stat().st_size,
                         f"embedding cosine mean {cos.mean():.4f} min {cos.min():.4f}; ORT p50 {ms:.1f} ms"))
        # mlctl's engine on its own int8 model and on ORT's.
        bench = subprocess.run(["cargo", "bench", "--bench", "runtime", "--no-run", "--message-format=json", "-q"],
                               cwd=ROOT, check=True, capture_output=True, text=True).stdout
        exe = [json.loads(l)["executable"] for l in bench.splitlines()
               if json.loads(l).get("executable") and json.loads(l)["target"]["name"] == "runtime"][0]
        for name in ("fp32", "ORT quantize_dynamic", "mlctl quantize", "mlctl quantize --mode static (minmax)"):
            out = subprocess.run([exe, str(variants[name]), str(tmp / "tokens.npz"), "--runs", "20",
                                  "--threads", str(args.threads)], check=True, capture_output=True, text=True).stdout
            rows.append(("MiniLM-L3", f"{name} in mlctl's engine", variants[name].stat().st_size,
                         f"mlctl p50 {json.loads(out.splitlines()[-1])['p50_ms']:.1f} ms"))
        speed = interleaved(exe, variants, tmp / "tokens.npz", feeds, args.threads, args.rounds)
    print(f"{'model':<10}{'variant':<58}{'bytes':>11}  result")
    for model, name, size, result in rows:
        print(f"{model:<10}{name:<58}{size:>11}  {result}")
    if found:
        print(speed)


def interleaved(exe, variants, tokens, feeds, threads, rounds):
    """The speed targets side by side, in alternating rounds (the figures
    above are one run each, minutes apart, on a machine whose speed moves
    by 20-50%): mlctl's int8 model in mlctl's engine, ONNX Runtime's own
    quantize_dynamic output in ONNX Runtime, and the fp32 model in mlctl's
    engine; each figure the median of its rounds' p50s."""
    ort_int8 = session(variants["ORT quantize_dynamic"], threads)
    times = {"mlctl int8": [], "ORT int8": [], "mlctl fp32": []}

    def ours(name):
        out = subprocess.run([exe, str(variants[name]), str(tokens), "--runs", "10", "--threads", str(threads)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.splitlines()[-1])["p50_ms"]

    for _ in range(rounds):
        times["mlctl int8"].append(ours("mlctl quantize"))
        times["ORT int8"].append(p50(lambda: ort_int8.run(None, feeds), runs=10))
        times["mlctl fp32"].append(ours("fp32"))
    m = {k: float(np.median(v)) for k, v in times.items()}
    return (f"MiniLM-L3 8 x 128, {rounds} alternating rounds: mlctl quantize in mlctl's engine {m['mlctl int8']:.1f} ms, "
            f"ORT quantize_dynamic in ONNX Runtime {m['ORT int8']:.1f} ms (ratio {m['mlctl int8'] / m['ORT int8']:.2f}); "
            f"fp32 in mlctl's engine {m['mlctl fp32']:.1f} ms (int8 speed-up {m['mlctl fp32'] / m['mlctl int8']:.2f}x)")


if __name__ == "__main__":
    main()
