//! `mlctl.toml`: the project's settings and gates, read from `--config FILE`
//! or `./mlctl.toml` when present. Flags given on the command line win over
//! the file. Every key is documented in docs/config.md.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub drift: DriftConfig,
    /// Sections other commands own; accepted here so one file serves all.
    #[serde(default)]
    pub features: Option<toml::Value>,
    #[serde(default)]
    pub quantize: Option<toml::Value>,
    #[serde(default)]
    pub bench: Option<toml::Value>,
    #[serde(default)]
    pub shadow: ShadowConfig,
}

/// `[shadow]`: the gates and settings of `mlctl shadow-compare`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    pub label: Option<String>,
    #[serde(default)]
    pub slice_by: Vec<String>,
    pub max_flip_rate: Option<f64>,
    pub max_negative_flip_rate: Option<f64>,
    pub max_accuracy_drop: Option<f64>,
    pub max_rmse_increase: Option<f64>,
    pub fail_on_slice_regression: Option<bool>,
    pub alpha: Option<f64>,
    pub max_psi: Option<f64>,
    pub top_slices: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    pub baseline: Option<String>,
    pub stattest: Option<String>,
    pub threshold: Option<f64>,
    pub drift_share: Option<f64>,
    pub fail_on: Option<String>,
    pub window: Option<String>,
    pub timestamp: Option<String>,
    pub prediction: Option<String>,
    pub confidence: Option<String>,
    pub label: Option<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub categorical: Vec<String>,
    #[serde(default)]
    pub numerical: Vec<String>,
    pub exact_cap: Option<usize>,
    /// Per-column test and threshold: `[drift.column.NAME]`.
    #[serde(default)]
    pub column: BTreeMap<String, ColumnConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    pub stattest: Option<String>,
    pub threshold: Option<f64>,
}

/// Reads `explicit` if given (it must exist), else `./mlctl.toml` if it exists.
pub fn load(explicit: Option<&Path>) -> Result<Config> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = Path::new("mlctl.toml");
            if !default.exists() {
                return Ok(Config::default());
            }
            default.to_path_buf()
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::input(&path, e))?;
    toml::from_str(&text).map_err(|e| Error::input(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_per_column_settings() {
        let c: Config = toml::from_str(
            r#"
            [drift]
            stattest = "psi"
            drift_share = 0.3
            [drift.column.mean_area]
            stattest = "ks"
            threshold = 0.01
            "#,
        )
        .unwrap();
        assert_eq!(c.drift.stattest.as_deref(), Some("psi"));
        assert_eq!(c.drift.column["mean_area"].threshold, Some(0.01));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = toml::from_str::<Config>("[drift]\nstat_test = \"ks\"\n").unwrap_err();
        assert!(e.to_string().contains("stat_test"));
    }
}
