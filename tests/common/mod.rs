//! What the integration tests share: how the binary is started, and the
//! contract that bad input gets one line on stderr and exit code 2.

#![allow(dead_code)] // each test file uses its own part

use assert_cmd::Command;

/// The binary, with an empty settings file so that the sample project's
/// mlctl.toml does not change what each test asks for.
pub fn mlctl() -> Command {
    let mut cmd = bare_mlctl();
    cmd.args(["--config", "tests/fixtures/empty.toml"]);
    cmd
}

/// The binary as a user runs it in the repository: ./mlctl.toml applies.
pub fn bare_mlctl() -> Command {
    let mut cmd = Command::cargo_bin("mlctl").unwrap();
    cmd.env("NO_COLOR", "1").env_remove("RUST_BACKTRACE");
    cmd
}

/// Exit code 2 with exactly one line on stderr that contains `needle`.
pub fn fails_cleanly(args: &[&str], needle: &str) {
    let out = mlctl().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

/// `shadow-compare` of the sample models (model.onnx against
/// model_v2.onnx) replaying `inputs`.
pub fn sample_replay(inputs: &str) -> [&str; 7] {
    [
        "shadow-compare",
        "--primary",
        "sample_data/model.onnx",
        "--candidate",
        "sample_data/model_v2.onnx",
        "--inputs",
        inputs,
    ]
}

/// The binary's JSON report for `args` (with `--format json`) and its exit
/// code.
pub fn json_report(args: &[&str]) -> (i32, serde_json::Value) {
    let out = mlctl()
        .args(["--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), value)
}

/// The rows of the report's section `key`.
pub fn section_rows<'a>(report: &'a serde_json::Value, key: &str) -> &'a Vec<serde_json::Value> {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no section {key}"))["rows"]
        .as_array()
        .unwrap()
}
