"""`mlctl features historical` against pandas merge_asof and Feast's local
offline store on the same data, in one run; prints times, peak memory, the
ratios, and whether the values agree. Also materializes the same source into
SQLite with mlctl and reports its rows per second, and times 10,000 online
reads of random entities in-process (`cargo bench --bench store`).

    python3 bench/features_vs_feast.py [--rows 5000000] [--entities 100000] [--entity-rows 500000]
    python3 bench/features_vs_feast.py --skip-feast        # without Feast

The data (written once to bench_data/features/, which git ignores): a source
of events over 90 days for the entities, five features (four floats, one
integer) with an event and a created timestamp, and entity rows at random
times, 2% of them for entities without events (they must come back with
nulls, not be dropped). The feature view keeps values 7 days (TTL).
Feast runs from the venv /root/.venvs/feast (pip install feast) when it
exists, else from this Python.
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "bench_data" / "features"
FEATURES = ["f0", "f1", "f2", "f3", "n4"]
DAY_US = 86_400_000_000


def make_data(rows, entities, entity_rows):
    source_path = DATA / f"source_{rows}_{entities}.parquet"
    entity_path = DATA / f"entities_{entity_rows}_{entities}.parquet"
    if source_path.exists() and entity_path.exists():
        return source_path, entity_path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2024-01-01", tz="UTC").value // 1000
    event = start + rng.integers(0, 90 * DAY_US, rows)
    source = pd.DataFrame(
        {
            "driver_id": rng.integers(0, entities, rows),
            "event_timestamp": pd.to_datetime(event, unit="us", utc=True),
            "created": pd.to_datetime(event + rng.integers(0, 3_600_000_000, rows), unit="us", utc=True),
            "f0": rng.normal(0, 1, rows),
            "f1": rng.exponential(2.0, rows),
            "f2": rng.uniform(-5, 5, rows),
            "f3": np.where(rng.random(rows) < 0.05, np.nan, rng.normal(10, 3, rows)),
            "n4": rng.integers(0, 1000, rows),
        }
    )
    source.to_parquet(source_path, index=False)
    ids = rng.integers(0, entities, entity_rows)
    # 2% of the rows ask for entities that have no events at all.
    ids[rng.random(entity_rows) < 0.02] = entities + 1_000_000
    times = start + rng.integers(0, 90 * DAY_US, entity_rows)
    pd.DataFrame(
        {
            "row_id": np.arange(entity_rows),
            "driver_id": ids,
            "event_timestamp": pd.to_datetime(times, unit="us", utc=True),
        }
    ).to_parquet(entity_path, index=False)
    return source_path, entity_path


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mlctl(binary, source_path, entity_path, work):
    config = work / "mlctl.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [features]
            store = "{work / 'features.db'}"
            [features.entities.driver]
            join_keys = ["driver_id"]
            [features.sources.events]
            path = "{source_path}"
            timestamp = "event_timestamp"
            created = "created"
            [features.views.stats]
            entity = "driver"
            source = "events"
            ttl = "7d"
            features = {json.dumps(FEATURES)}
            """
        )
    )
    out = work / "mlctl.parquet"
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", binary, "-q", "--config", str(config), "features", "historical",
         "--entities", str(entity_path), "--features", "stats", "-o", str(out)],
        capture_output=True, text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"mlctl failed: {proc.stderr}")
    rss = int(proc.stderr.strip().splitlines()[-1]) / 1024
    materialize = subprocess.run(
        [binary, "--format", "json", "--config", str(config), "features", "materialize", "--end", "2024-04-01"],
        capture_output=True, text=True,
    )
    if materialize.returncode != 0:
        raise SystemExit(f"mlctl materialize failed: {materialize.stderr}")
    summary = json.loads(materialize.stdout)["summary"]
    reads = subprocess.run(
        ["cargo", "bench", "-q", "--bench", "store", "--", str(work / "features.db"), "stats"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if reads.returncode != 0:
        raise SystemExit(f"the store bench failed: {reads.stderr}")
    summary["reads"] = json.loads(reads.stdout.strip().splitlines()[-1])
    return pd.read_parquet(out), seconds, rss, summary


def run_pandas(source_path, entity_path):
    start = time.perf_counter()
    source = pd.read_parquet(source_path)
    entities = pd.read_parquet(entity_path)
    s = source.sort_values(["event_timestamp", "created"], kind="stable")
    e = entities.sort_values("event_timestamp", kind="stable")
    merged = pd.merge_asof(
        e, s[["driver_id", "event_timestamp"] + FEATURES].rename(columns={"event_timestamp": "source_time"}),
        left_on="event_timestamp", right_on="source_time", by="driver_id",
        direction="backward", tolerance=pd.Timedelta(days=7),
    ).sort_values("row_id")
    return merged.reset_index(drop=True), time.perf_counter() - start


FEAST_SCRIPT = """
import sys, time, resource, pathlib, textwrap
from datetime import timedelta
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float64, Int64
repo = pathlib.Path(sys.argv[1]); source_path, entity_path, out = sys.argv[2], sys.argv[3], sys.argv[4]
(repo / "feature_store.yaml").write_text(textwrap.dedent('''
    project: bench
    registry: registry.db
    provider: local
    offline_store:
        type: file
    online_store:
        type: sqlite
        path: online.db
    entity_key_serialization_version: 3
'''))
driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path=source_path, timestamp_field="event_timestamp", created_timestamp_column="created")
view = FeatureView(name="stats", entities=[driver], ttl=timedelta(days=7),
    schema=[Field(name=n, dtype=Float64) for n in ["f0", "f1", "f2", "f3"]] + [Field(name="n4", dtype=Int64)],
    source=source)
store = FeatureStore(repo_path=str(repo))
store.apply([driver, view])
entities = pd.read_parquet(entity_path)
start = time.perf_counter()
df = store.get_historical_features(entity_df=entities,
    features=[f"stats:{n}" for n in ["f0", "f1", "f2", "f3", "n4"]]).to_df()
seconds = time.perf_counter() - start
df.to_parquet(out, index=False)
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run_feast(source_path, entity_path, work):
    python = "/root/.venvs/feast/bin/python" if os.path.exists("/root/.venvs/feast/bin/python") else sys.executable
    repo = work / "feast_repo"
    repo.mkdir()
    out = work / "feast.parquet"
    proc = subprocess.run([python, "-c", FEAST_SCRIPT, str(repo), str(source_path), str(entity_path), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print("Feast failed:", proc.stderr.strip().splitlines()[-1:])
        return None
    seconds, rss = map(float, proc.stdout.strip().splitlines()[-1].split())
    return pd.read_parquet(out), seconds, rss


def agree(a, b, label):
    """Rows matched by row_id; floats equal, nulls in the same places."""
    a = a.set_index("row_id").sort_index()
    b = b.set_index("row_id").sort_index()
    common = a.index.intersection(b.index)
    bad = 0
    for f in FEATURES:
        x = a.loc[common, f].astype(float).to_numpy()
        y = b.loc[common, f].astype(float).to_numpy()
        bad += int((~((x == y) | (np.isnan(x) & np.isnan(y)))).sum())
    print(f"  {label}: {len(common)} rows compared, {bad} values differ; "
          f"rows missing from the second: {len(a.index.difference(b.index))}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--entity-rows", type=int, default=500_000)
    parser.add_argument("--skip-feast", action="store_true")
    args = parser.parse_args()
    source_path, entity_path = make_data(args.rows, args.entities, args.entity_rows)
    build = subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT)
    if build.returncode != 0:
        raise SystemExit("cargo build failed")
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = str(target / "release" / "mlctl")
    source_mb = pd.read_parquet(source_path).memory_usage(deep=True).sum() / 2**20
    entity_mb = pd.read_parquet(entity_path).memory_usage(deep=True).sum() / 2**20
    print(f"{args.rows} source rows, {args.entities} entities, {args.entity_rows} entity rows; "
          f"input in memory (pandas): {source_mb + entity_mb:.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        ours, ours_s, ours_rss, materialized = run_mlctl(binary, source_path, entity_path, work)
        theirs, pandas_s = run_pandas(source_path, entity_path)
        pandas_rss = peak_rss_mb()
        feast = None if args.skip_feast else run_feast(source_path, entity_path, work)
        print(f"{'tool':<34}{'seconds':>10}{'peak MiB':>10}{'mlctl faster by':>17}")
        print(f"{'mlctl features historical':<34}{ours_s:>10.2f}{ours_rss:>10.0f}{'':>17}")
        print(f"{'pandas read + sort + merge_asof':<34}{pandas_s:>10.2f}{pandas_rss:>10.0f}{pandas_s / ours_s:>16.2f}x")
        if feast is not None:
            feast_df, feast_s, feast_rss = feast
            print(f"{'Feast local offline store':<34}{feast_s:>10.2f}{feast_rss:>10.0f}{feast_s / ours_s:>16.2f}x")
        print(f"mlctl peak memory / input in memory: {ours_rss / (source_mb + entity_mb):.2f}")
        print(f"mlctl materialize into SQLite: {materialized['entities']} entities, "
              f"{materialized['source_rows']} source rows in {materialized['seconds']:.2f} s "
              f"({materialized['rows_per_second']:.0f} rows/s)")
        r = materialized["reads"]
        print(f"mlctl online get from SQLite, in-process, {r['reads']} random keys of {r['entities']}: "
              f"p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us, max {r['max_us']:.1f} us")
        print("values:")
        agree(ours, theirs, "mlctl vs pandas merge_asof")
        if feast is not None:
            agree(ours, feast_df, "mlctl vs Feast")
            print(f"  Feast returned {len(feast_df)} of {len(ours)} entity rows")


if __name__ == "__main__":
    main()
