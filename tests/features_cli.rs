//! `mlctl features`: the training set against pandas (fixtures made by
//! tests/fixtures/make_features_fixtures.py), the parity of the online
//! store with the training set on SQLite and on a real Redis server, and the
//! errors that must leave the store as it was.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};

use assert_cmd::Command;
use mlctl::data::{Frame, Values};

const FIXTURES: &str = "tests/fixtures/features";
const T: &str = "2013-07-20T12:00:00Z";
/// Every feature of the fixture's two views, as the training set names them.
const FEATURES: [&str; 11] = [
    "dep_delay",
    "dest",
    "distance",
    "dep_delay_mean_7d",
    "flights_7d",
    "destinations_30d",
    "arr_delay_sum_1d",
    "distance_max_30d",
    "distance_min_30d",
    "arr_delay",
    "route_dep_delay_mean_1d",
];

/// The fixture config, written into `dir` with its source path made
/// absolute and the store set to `store`.
fn config_in(dir: &Path, store: &str) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("mlctl.toml")).unwrap();
    let samples = std::fs::canonicalize("sample_data").unwrap();
    let text = text
        .replace("../../../sample_data/", &format!("{}/", samples.display()))
        .replace("store = \"features.db\"", &format!("store = \"{store}\""));
    let path = dir.join("mlctl.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn mlctl(config: &Path) -> Command {
    let mut c = Command::cargo_bin("mlctl").unwrap();
    c.arg("--config").arg(config);
    c
}

/// `features historical` of both fixture views for `entities`, into `out`.
fn historical(config: &Path, entities: &Path, out: &Path) {
    mlctl(config)
        .args([
            "-q",
            "features",
            "historical",
            "--features",
            "aircraft,route",
        ])
        .arg("--entities")
        .arg(entities)
        .arg("-o")
        .arg(out)
        .assert()
        .success();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// One cell of a typed column as JSON (what `get --format json` prints).
fn cell(values: &Values, row: usize) -> serde_json::Value {
    match values {
        Values::Int(v) => v[row].map_or(serde_json::Value::Null, Into::into),
        Values::Float(v) => v[row].map_or(serde_json::Value::Null, |x| serde_json::json!(x)),
        Values::Text(v) => v[row].clone().map_or(serde_json::Value::Null, Into::into),
        Values::Bool(v) => v[row].map_or(serde_json::Value::Null, Into::into),
    }
}

fn close(a: &Values, b: &Values, column: &str) {
    assert_eq!(a.len(), b.len(), "{column}");
    for row in 0..a.len() {
        let (x, y) = (cell(a, row), cell(b, row));
        match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => assert!(
                (p - q).abs() <= 1e-12 * p.abs().max(1.0),
                "{column}[{row}]: {p} vs {q}"
            ),
            _ => assert_eq!(x, y, "{column}[{row}]"),
        }
    }
}

#[test]
fn the_training_set_matches_pandas_merge_asof_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "unused.db");
    let out = dir.path().join("train.parquet");
    historical(&config, &fixture("entities.parquet"), &out);
    let got = Frame::read(&out, None).unwrap();
    let expected = Frame::read(&fixture("expected.parquet"), None).unwrap();
    let entities = Frame::read(&fixture("entities.parquet"), None).unwrap();
    assert_eq!(got.height(), entities.height());
    // The entity rows come back in their order, duplicates kept.
    assert_eq!(
        got.text("tailnum").unwrap(),
        entities.text("tailnum").unwrap()
    );
    for column in FEATURES {
        close(
            &got.values(column).unwrap(),
            &expected.values(column).unwrap(),
            column,
        );
    }
    // Types: a latest value keeps its column's, counts are integers.
    assert!(matches!(got.values("distance").unwrap(), Values::Int(_)));
    assert!(matches!(got.values("flights_7d").unwrap(), Values::Int(_)));
    assert!(matches!(got.values("dest").unwrap(), Values::Text(_)));
}

/// `get --format json` for one entity at T: feature name to value.
fn get(
    config: &Path,
    row: &[(&str, String)],
    at: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut cmd = mlctl(config);
    cmd.args(["--format", "json", "features", "get", "--at", at]);
    for (k, v) in row {
        cmd.arg("--entity").arg(format!("{k}={v}"));
    }
    let out = cmd.assert().success().get_output().stdout.clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    report["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["feature"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// The shared suite of both stores: materialize at T, then every entity's
/// online values equal the training set's at T, same values, same types,
/// for every kind of feature; a second run changes nothing.
fn online_values_equal_the_training_set(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = store.replace("{dir}", &dir.path().display().to_string());
    let config = config_in(dir.path(), &store);
    mlctl(&config)
        .args(["-q", "features", "materialize", "--end", T])
        .assert()
        .success();
    let train = dir.path().join("parity.parquet");
    historical(&config, &fixture("parity_entities.parquet"), &train);
    let offline = Frame::read(&train, None).unwrap();
    let keys: Vec<_> = ["tailnum", "carrier", "origin"]
        .iter()
        .map(|k| offline.text(k).unwrap())
        .collect();
    let features = FEATURES;
    let columns: Vec<Values> = features
        .iter()
        .map(|f| offline.values(f).unwrap())
        .collect();
    let first_run = (0..offline.height())
        .map(|row| {
            let entity: Vec<(&str, String)> = ["tailnum", "carrier", "origin"]
                .iter()
                .zip(&keys)
                .map(|(k, v)| (*k, v[row].clone().unwrap()))
                .collect();
            let online = get(&config, &entity, T);
            for (feature, column) in features.iter().zip(&columns) {
                let value = &online[*feature]["value"];
                let expected = cell(column, row);
                assert_eq!(
                    value, &expected,
                    "{store}: {feature} of {entity:?}: online {value}, training set {expected}"
                );
            }
            online
        })
        .collect::<Vec<_>>();
    // Materializing again changes nothing.
    mlctl(&config)
        .args(["-q", "features", "materialize", "--end", T])
        .assert()
        .success();
    let entity = vec![
        ("tailnum", keys[0][0].clone().unwrap()),
        ("carrier", keys[1][0].clone().unwrap()),
        ("origin", keys[2][0].clone().unwrap()),
    ];
    assert_eq!(get(&config, &entity, T), first_run[0]);
    // The TTL applies on read: eight days later the latest values have
    // expired (the aircraft view keeps them 7 days), the windows stand.
    let later = get(&config, &entity, "2013-07-28T12:00:00Z");
    if first_run[0]["dep_delay"]["status"] == "present" {
        assert_eq!(later["dep_delay"]["status"], "expired");
        assert_eq!(later["dep_delay"]["value"], serde_json::Value::Null);
    }
    assert_eq!(
        later["flights_7d"]["value"],
        first_run[0]["flights_7d"]["value"]
    );
}

#[test]
fn sqlite_online_values_equal_the_training_set() {
    online_values_equal_the_training_set("{dir}/features.db");
}

/// A redis-server of our own on a free loopback port, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = tempfile::tempdir().ok()?;
        let child = Process::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_online_values_equal_the_training_set() {
    let Some(server) = RedisServer::start() else {
        eprintln!(
            "\n*** SKIPPED: redis-server is not installed (or did not start); the Redis store was NOT tested. \
             `apt-get install redis-server` to run it (.ci/run does). ***\n"
        );
        return;
    };
    online_values_equal_the_training_set(&format!("redis://127.0.0.1:{}/0", server.port));
    // Redis going away: a clear error, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), &format!("redis://127.0.0.1:{}/0", server.port));
    drop(server);
    mlctl(&config)
        .args(["features", "materialize", "--end", T])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("feature store"));
}

#[test]
fn incremental_runs_continue_from_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "features.db");
    // No watermark yet.
    mlctl(&config)
        .args(["features", "materialize", "--incremental", "--end", T])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no watermark"));
    mlctl(&config)
        .args([
            "-q",
            "features",
            "materialize",
            "--end",
            "2013-07-10T00:00:00Z",
        ])
        .assert()
        .success();
    let out = mlctl(&config)
        .args([
            "--format",
            "json",
            "features",
            "materialize",
            "--incremental",
            "--end",
            T,
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let view = &report["sections"][0]["rows"][0];
    assert_eq!(view["start"], "2013-07-10T00:00:00Z");
    assert!(view["entities"].as_i64().unwrap() > 0);
    // What it wrote is what a full run gives at T.
    let full_dir = tempfile::tempdir().unwrap();
    let full = config_in(full_dir.path(), "features.db");
    mlctl(&full)
        .args(["-q", "features", "materialize", "--end", T])
        .assert()
        .success();
    let parity = Frame::read(&fixture("parity_entities.parquet"), None).unwrap();
    for row in 0..5 {
        let entity: Vec<(&str, String)> = ["tailnum", "carrier", "origin"]
            .iter()
            .map(|k| (*k, parity.text(k).unwrap()[row].clone().unwrap()))
            .collect();
        // Values and statuses; `as_of` stays at the first END for entities
        // whose values could not have changed since.
        let strip = |m: serde_json::Map<String, serde_json::Value>| -> Vec<_> {
            m.into_iter()
                .map(|(k, v)| (k, v["value"].clone(), v["status"].clone()))
                .collect()
        };
        assert_eq!(
            strip(get(&config, &entity, T)),
            strip(get(&full, &entity, T)),
            "{entity:?}"
        );
    }
}

fn store_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn bad_requests_get_one_line_and_exit_2_and_leave_the_store_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "features.db");
    let store = dir.path().join("features.db");
    mlctl(&config)
        .args(["-q", "features", "materialize", "--end", T])
        .assert()
        .success();
    let before = store_bytes(&store);
    let fails = |args: &[&str], says: &str| {
        let out = mlctl(&config)
            .args(args)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    };
    fails(
        &["features", "materialize", "--end", "2999-01-01"],
        "in the future",
    );
    fails(
        &["features", "materialize", "--end", "yesterday"],
        "bad time",
    );
    let entities = fixture("entities.parquet").display().to_string();
    let out = dir.path().join("t.parquet").display().to_string();
    fails(
        &[
            "features",
            "historical",
            "--entities",
            &entities,
            "--features",
            "aircraft:nope",
            "-o",
            &out,
        ],
        "aircraft:nope",
    );
    fails(
        &[
            "features",
            "historical",
            "--entities",
            &entities,
            "--features",
            "aircraft",
            "--timestamp",
            "when",
            "-o",
            &out,
        ],
        "when",
    );
    let naive = fixture("entities_naive.parquet").display().to_string();
    fails(
        &[
            "features",
            "historical",
            "--entities",
            &naive,
            "--features",
            "aircraft",
            "-o",
            &out,
        ],
        "time zone",
    );
    let null_key = fixture("entities_null_key.parquet").display().to_string();
    fails(
        &[
            "features",
            "historical",
            "--entities",
            &null_key,
            "--features",
            "aircraft",
            "-o",
            &out,
        ],
        "null",
    );
    assert!(!Path::new(&out).exists(), "no half-written training set");
    fails(
        &[
            "features",
            "get",
            "--entity",
            "tailnum=N1",
            "--features",
            "route",
        ],
        "carrier",
    );
    assert_eq!(store_bytes(&store), before);

    // Materializing with one setting of the config changed fails, naming it.
    let text = std::fs::read_to_string(&config).unwrap();
    let materialize_fails = |from: &str, to: &str, says: &str| {
        let changed = dir.path().join("changed.toml");
        std::fs::write(&changed, text.replace(from, to)).unwrap();
        let out = mlctl(&changed)
            .args(["features", "materialize", "--end", T])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(says), "{err}");
    };
    // A source without its timestamp column.
    materialize_fails(
        "timestamp = \"time_hour\"",
        "timestamp = \"hour_time\"",
        "hour_time",
    );
    assert_eq!(store_bytes(&store), before);

    // A store another process holds locked: the run waits, then says so.
    let locker = rusqlite::Connection::open(&store).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    fails(&["features", "materialize", "--end", T], "locked");
    locker.execute_batch("ROLLBACK;").unwrap();
    drop(locker);
    assert_eq!(store_bytes(&store), before);

    // A store file that is not a database.
    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, b"this is not a sqlite file, not at all, no").unwrap();
    materialize_fails(
        "store = \"features.db\"",
        "store = \"corrupt.db\"",
        "corrupt.db",
    );
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        b"this is not a sqlite file, not at all, no"
    );
}

#[test]
fn get_without_features_reads_the_views_the_entity_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "features.db");
    mlctl(&config)
        .args(["-q", "features", "materialize", "--end", T])
        .assert()
        .success();
    let online = get(&config, &[("tailnum", "N14228".to_string())], T);
    assert!(
        online.values().all(|r| r["view"] == "aircraft"),
        "{online:?}"
    );
    assert!(online.contains_key("dep_delay_mean_7d"));
    mlctl(&config)
        .args(["features", "get", "--entity", "user=1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("aircraft by tailnum"));
}

#[test]
fn skew_finds_exactly_the_values_a_service_served_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "unused.db");
    let log = fixture("serving_log.parquet");
    let out = mlctl(&config)
        .args(["--format", "json", "features", "skew", "--log"])
        .arg(&log)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = report["sections"][0]["rows"].as_array().unwrap();
    let by_feature = |f: &str| rows.iter().find(|r| r["feature"] == f).unwrap().clone();
    // make_features_fixtures.py changed 10 delays by one minute and 4
    // destinations; the counts of flights were served right.
    assert_eq!(by_feature("aircraft:dep_delay")["mismatches"], 10);
    assert_eq!(by_feature("aircraft:dep_delay")["max_abs_diff"], 1.0);
    assert_eq!(by_feature("aircraft:dest")["mismatches"], 4);
    assert_eq!(by_feature("aircraft:flights_7d")["mismatches"], 0);
    assert!(report["gate"]["message"]
        .as_str()
        .unwrap()
        .contains("aircraft:dep_delay"));
    // Within a 3% budget it passes.
    mlctl(&config)
        .args(["-q", "features", "skew", "--max-mismatch", "0.03", "--log"])
        .arg(&log)
        .assert()
        .success();
}

/// Among events of the same time, the latest created wins, wherever it sits
/// in the file; a CSV source and CSV entity rows (times without a zone on
/// both sides) work the same way.
#[test]
fn ties_go_to_the_latest_created_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.csv"),
        "user,ts,created,score\n\
         u1,2024-01-01 10:00:00,2024-01-01 10:05:00,2\n\
         u1,2024-01-01 10:00:00,2024-01-01 10:01:00,1\n\
         u1,2024-01-01 09:00:00,2024-01-01 09:00:00,0\n\
         u2,2024-01-01 08:00:00,2024-01-01 08:00:00,7\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rows.csv"),
        "user,event_timestamp\n\
         u1,2024-01-01 10:00:00\n\
         u1,2024-01-01 09:30:00\n\
         u2,2024-01-01 07:00:00\n\
         u3,2024-01-01 10:00:00\n",
    )
    .unwrap();
    let config = dir.path().join("mlctl.toml");
    std::fs::write(
        &config,
        "[features]\n\
         [features.entities.user]\njoin_keys = [\"user\"]\n\
         [features.sources.events]\npath = \"events.csv\"\ntimestamp = \"ts\"\ncreated = \"created\"\n\
         [features.views.scores]\nentity = \"user\"\nsource = \"events\"\nfeatures = [\"score\"]\n",
    )
    .unwrap();
    let out = dir.path().join("train.parquet");
    mlctl(&config)
        .args([
            "-q",
            "features",
            "historical",
            "--features",
            "scores",
            "--entities",
        ])
        .arg(dir.path().join("rows.csv"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let got = Frame::read(&out, None).unwrap();
    assert_eq!(
        got.values("score").unwrap(),
        Values::Int(vec![Some(2), Some(0), None, None])
    );
}

#[test]
fn reading_before_any_materialization_is_an_error_that_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "none.db");
    mlctl(&config)
        .args(["features", "get", "--entity", "tailnum=N1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("materialize"));
    assert!(!dir.path().join("none.db").exists());
}
