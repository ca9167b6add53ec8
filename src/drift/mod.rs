//! `mlctl drift`: has the current data moved away from the baseline?
//!
//! Both sides are reduced to `ColumnProfile`s (the baseline may already be a
//! stored profile), each feature column gets a statistical test chosen as
//! Evidently chooses it, data-quality checks run beside the tests, the model's
//! own columns (prediction, confidence, label) get a section of their own, and
//! `--window` repeats the analysis per time or row window so a CI job sees
//! when drift began.

pub mod predictions;
pub mod quality;
pub mod sample;
pub mod select;
pub mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::{ConfidenceBin, Grouping, OutcomeCounts, Table, ValueType};
use crate::error::{Error, Result};
use crate::report::{Cell, Chart, Gate, Outcome, Report, Section, Series, Status};
use crate::stats::binning::bin_numeric;
use crate::stats::profile::{ColumnProfile, TableProfile, DEFAULT_EXACT_CAP};
pub use select::{Kind, StatTest};
pub use window::Window;

/// Columns with at most this many distinct integer values are categorical.
pub const MAX_CATEGORICAL_INTEGERS: usize = 5;
/// Distinct numbers kept exactly per current-data column (and window); a
/// column with more is summarised with a stated rank error.
pub const CURRENT_EXACT_CAP: usize = 1_000_000;
/// Categories drawn in a chart before the rest are pooled as "(other)".
const CHART_CATEGORIES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Exit 1 when the whole current data set drifted (the default).
    Drift,
    /// Exit 1 when any window drifted.
    AnyWindow,
    /// Report only; always exit 0.
    Never,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub current: PathBuf,
    /// A table (parquet/CSV) or a profile written by `mlctl baseline`.
    pub baseline: PathBuf,
    /// Only these columns (all shared columns when empty).
    pub columns: Vec<String>,
    pub exclude: Vec<String>,
    pub stattest: Option<StatTest>,
    pub column_stattest: BTreeMap<String, StatTest>,
    pub threshold: Option<f64>,
    pub column_threshold: BTreeMap<String, f64>,
    pub drift_share: f64,
    pub fail_on: FailOn,
    pub window: Option<Window>,
    pub timestamp: Option<String>,
    pub prediction: String,
    pub confidence: String,
    pub label: String,
    pub categorical: Vec<String>,
    pub numerical: Vec<String>,
    pub exact_cap: usize,
    pub show_progress: bool,
}

impl Options {
    pub fn new(current: PathBuf, baseline: PathBuf) -> Self {
        Options {
            current,
            baseline,
            columns: Vec::new(),
            exclude: Vec::new(),
            stattest: None,
            column_stattest: BTreeMap::new(),
            threshold: None,
            column_threshold: BTreeMap::new(),
            drift_share: 0.5,
            fail_on: FailOn::Drift,
            window: None,
            timestamp: None,
            prediction: "prediction".into(),
            confidence: "confidence".into(),
            label: "label".into(),
            categorical: Vec::new(),
            numerical: Vec::new(),
            exact_cap: DEFAULT_EXACT_CAP,
            show_progress: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.drift_share > 0.0 && self.drift_share <= 1.0) {
            return Err(Error::usage(format!(
                "--drift-share must be in (0, 1], got {}",
                self.drift_share
            )));
        }
        for t in self.threshold.iter().chain(self.column_threshold.values()) {
            if !t.is_finite() || *t < 0.0 {
                return Err(Error::usage(format!(
                    "thresholds must be non-negative, got {t}"
                )));
            }
        }
        Ok(())
    }
}

/// Reads a baseline: a stored profile, or a table profiled on the fly.
pub fn load_baseline(path: &Path, exact_cap: usize) -> Result<TableProfile> {
    if looks_like_profile(path) {
        return read_profile(path);
    }
    let table = Table::open(path)?;
    sample::profile_table(&table, exact_cap)
}

fn looks_like_profile(path: &Path) -> bool {
    if path.extension().and_then(|e| e.to_str()) == Some("mlprofile") {
        return true;
    }
    let mut head = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map(|n| n == 1 && head[0] == b'{')
        .unwrap_or(false)
}

pub fn read_profile(path: &Path) -> Result<TableProfile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, e))?;
    let profile: TableProfile = serde_json::from_str(&text)
        .map_err(|e| Error::input(path, format!("not a valid mlctl profile: {e}")))?;
    if profile.format != crate::stats::profile::FORMAT {
        return Err(Error::input(path, "not an mlctl profile"));
    }
    if profile.version > crate::stats::profile::VERSION {
        return Err(Error::input(
            path,
            format!(
                "profile version {} is newer than this mlctl understands ({}); upgrade mlctl",
                profile.version,
                crate::stats::profile::VERSION
            ),
        ));
    }
    Ok(profile)
}

/// Data sets for training often call the label `target` (scikit-learn,
/// Evidently): without a `label` column, a `target` column is the label.
fn with_label_column(opts: &Options) -> Options {
    let mut o = opts.clone();
    if o.label == "label" {
        let has = |path: &Path, name: &str| {
            Table::open(path)
                .map(|t| t.value_type(name).is_some())
                .unwrap_or(false)
        };
        if !has(&o.current, "label") && has(&o.current, "target") {
            o.label = "target".into();
        }
    }
    o
}

/// What a column is for in this comparison.
#[derive(Debug, Clone)]
enum Role {
    Feature(Kind),
    Model(Kind),
    Skipped(String),
}

fn is_id_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id" || n.ends_with("_id") || n.ends_with("uuid")
}

fn role_of(
    opts: &Options,
    reference: &ColumnProfile,
    current_type: ValueType,
    timestamp: Option<&str>,
) -> Role {
    let name = reference.name.as_str();
    if Some(name) == timestamp
        || current_type == ValueType::Time
        || reference.value_type == "timestamp"
    {
        return Role::Skipped("timestamp column".into());
    }
    let ref_numeric = reference.numbers.is_some();
    let cur_numeric = current_type.is_numeric();
    if ref_numeric != cur_numeric {
        return Role::Skipped(format!(
            "type differs: {} in baseline, {} in current",
            reference.value_type,
            current_type.name()
        ));
    }
    let model_column = name == opts.prediction || name == opts.confidence || name == opts.label;
    let forced_cat = opts.categorical.iter().any(|c| c == name);
    let forced_num = opts.numerical.iter().any(|c| c == name);
    if !model_column && !forced_cat && !forced_num && is_id_name(name) {
        return Role::Skipped("identifier column".into());
    }
    if !model_column
        && !forced_cat
        && reference.categories.is_some()
        && reference.usable() >= 50
        && reference.n_distinct() as u64 == reference.usable()
    {
        return Role::Skipped("identifier column: every value is distinct".into());
    }
    let kind = if forced_num && ref_numeric {
        Kind::Numerical
    } else if forced_cat
        || !ref_numeric
        || (reference.value_type == "integer" && reference.n_distinct() <= MAX_CATEGORICAL_INTEGERS)
    {
        Kind::Categorical
    } else {
        Kind::Numerical
    };
    if model_column {
        Role::Model(kind)
    } else {
        Role::Feature(kind)
    }
}

/// The verdict of one column over one slice of the current data.
#[derive(Debug, Clone)]
struct ColumnResult {
    name: String,
    kind: Kind,
    test: StatTest,
    threshold: f64,
    outcome: std::result::Result<select::TestOutcome, String>,
}

fn test_column(
    opts: &Options,
    name: &str,
    kind: Kind,
    reference: &ColumnProfile,
    current: &ColumnProfile,
) -> ColumnResult {
    let pooled = select::pooled_distinct(reference, current);
    let test = opts
        .column_stattest
        .get(name)
        .copied()
        .or(opts.stattest)
        .unwrap_or_else(|| select::select_test(kind, reference.usable(), pooled));
    let threshold = opts
        .column_threshold
        .get(name)
        .copied()
        .or(opts.threshold)
        .unwrap_or_else(|| test.default_threshold());
    let outcome = if reference.usable() == 0 {
        Err("no usable values in the baseline".to_string())
    } else if current.usable() == 0 {
        Err(format!(
            "no usable values in the current data ({} rows, {} null)",
            current.rows, current.nulls
        ))
    } else if test.numeric_only() && kind == Kind::Categorical && reference.numbers.is_none() {
        Err(format!(
            "{test} needs a numeric column; this one is categorical"
        ))
    } else {
        select::run_test(test, threshold, kind, reference, current)
    };
    ColumnResult {
        name: name.to_string(),
        kind,
        test,
        threshold,
        outcome,
    }
}

fn drift_share_of(results: &[ColumnResult]) -> (usize, usize) {
    let tested = results.iter().filter(|r| r.outcome.is_ok()).count();
    let drifted = results
        .iter()
        .filter(|r| matches!(&r.outcome, Ok(o) if o.drift))
        .count();
    (drifted, tested)
}

fn histogram_chart(
    name: &str,
    kind: Kind,
    reference: &ColumnProfile,
    current: &ColumnProfile,
) -> Option<Chart> {
    let (bins, r, c) = match (kind, &reference.numbers, &current.numbers) {
        (Kind::Numerical, Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
            let binned = bin_numeric(a, b, false);
            (binned.labels, binned.reference, binned.current)
        }
        (_, Some(a), Some(b)) if !a.is_empty() || !b.is_empty() => {
            let (keys, ca, cb) = crate::stats::binning::align_values(a, b);
            let labels = keys
                .iter()
                .map(|k| crate::report::format_float(*k))
                .collect();
            (
                labels,
                crate::stats::binning::shares(&ca),
                crate::stats::binning::shares(&cb),
            )
        }
        _ => {
            let empty = BTreeMap::new();
            let a = reference.categories.as_ref().unwrap_or(&empty);
            let b = current.categories.as_ref().unwrap_or(&empty);
            let (na, nb) = (
                reference.usable().max(1) as f64,
                current.usable().max(1) as f64,
            );
            // The most frequent categories of both samples together.
            let mut totals: Vec<(&String, u64)> = select::union_keys(a, b)
                .into_iter()
                .map(|k| {
                    (
                        k,
                        a.get(k).copied().unwrap_or(0) + b.get(k).copied().unwrap_or(0),
                    )
                })
                .collect();
            totals.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let keys: Vec<&String> = totals.into_iter().map(|(k, _)| k).collect();
            let shown = keys.len().min(CHART_CATEGORIES);
            let mut labels: Vec<String> = keys[..shown].iter().map(|k| k.to_string()).collect();
            let mut r: Vec<f64> = keys[..shown]
                .iter()
                .map(|k| a.get(*k).copied().unwrap_or(0) as f64 / na)
                .collect();
            let mut c: Vec<f64> = keys[..shown]
                .iter()
                .map(|k| b.get(*k).copied().unwrap_or(0) as f64 / nb)
                .collect();
            if keys.len() > shown {
                labels.push("(other)".into());
                r.push(1.0 - r.iter().sum::<f64>());
                c.push(1.0 - c.iter().sum::<f64>());
            }
            (labels, r, c)
        }
    };
    if bins.is_empty() {
        return None;
    }
    Some(Chart::Histogram {
        title: name.to_string(),
        bins,
        series: vec![
            Series {
                name: "baseline".into(),
                values: r,
            },
            Series {
                name: "current".into(),
                values: c,
            },
        ],
    })
}

struct WindowResult {
    label: String,
    rows: u64,
    columns: Vec<ColumnResult>,
    performance: Option<predictions::Performance>,
    ece: Option<f64>,
}

pub fn run(opts: &Options) -> Result<Report> {
    opts.validate()?;
    let opts = &with_label_column(opts);
    let progress = if opts.show_progress {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_message(format!("reading baseline {}", opts.baseline.display()));
    let baseline = load_baseline(&opts.baseline, opts.exact_cap)?;
    progress.set_message(format!("reading current {}", opts.current.display()));
    let current = Table::open(&opts.current)?;

    // Which columns to analyse.
    for name in opts.columns.iter().chain(&opts.exclude) {
        if baseline.column(name).is_none() && current.value_type(name).is_none() {
            return Err(Error::usage(format!("column '{name}' is in neither file")));
        }
    }
    let wanted = |name: &str| {
        (opts.columns.is_empty()
            || opts.columns.iter().any(|c| c == name)
            || [&opts.prediction, &opts.confidence, &opts.label]
                .iter()
                .any(|c| c.as_str() == name))
            && !opts.exclude.iter().any(|c| c == name)
    };
    let timestamp: Option<String> = match &opts.timestamp {
        Some(t) => {
            if current.value_type(t).is_none() {
                return Err(Error::input(
                    &opts.current,
                    format!("no timestamp column '{t}'"),
                ));
            }
            Some(t.clone())
        }
        None => current
            .columns
            .iter()
            .find(|(n, t)| n == "timestamp" && *t == ValueType::Time)
            .or_else(|| current.columns.iter().find(|(_, t)| *t == ValueType::Time))
            .map(|(n, _)| n.clone()),
    };
    let shared: Vec<&ColumnProfile> = baseline
        .columns
        .iter()
        .filter(|c| current.value_type(&c.name).is_some() && wanted(&c.name))
        .collect();
    if shared.is_empty() {
        return Err(Error::input(
            &opts.current,
            format!(
                "no column in common with the baseline {} (baseline has: {})",
                opts.baseline.display(),
                baseline
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .take(10)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut roles: Vec<(&ColumnProfile, Role)> = shared
        .iter()
        .map(|c| {
            let vt = current.value_type(&c.name).unwrap();
            let role = if matches!(vt, ValueType::Other | ValueType::List) {
                Role::Skipped("unsupported type (nested or binary)".into())
            } else {
                role_of(opts, c, vt, timestamp.as_deref())
            };
            (*c, role)
        })
        .collect();
    roles.sort_by_key(|(c, _)| baseline.columns.iter().position(|b| b.name == c.name));

    let grouping = match (opts.window, &timestamp) {
        (None, _) => Grouping::Whole,
        (Some(Window::Rows(n)), _) => Grouping::RowBlocks(n),
        (Some(Window::Time(_)), None) => {
            return Err(Error::usage(format!(
            "--window by time needs a timestamp column and {} has none (name one with --timestamp)",
            opts.current.display()
        )))
        }
        (Some(Window::Time(width)), Some(t)) => {
            if current.value_type(t) != Some(ValueType::Time) {
                return Err(Error::input(
                    &opts.current,
                    format!("column '{t}' is not a timestamp"),
                ));
            }
            Grouping::Time {
                column: t.clone(),
                width_micros: width,
            }
        }
    };
    let group_sizes = current.group_sizes(&grouping)?;
    let n_rows: u64 = group_sizes.iter().map(|(_, n)| n).sum();
    if n_rows == 0 {
        return Err(Error::input(&opts.current, "the table has no rows"));
    }
    let rows_without_time: u64 = group_sizes
        .iter()
        .filter(|(g, _)| g.is_none())
        .map(|(_, n)| n)
        .sum();
    let mut window_ids: Vec<i64> = group_sizes.iter().filter_map(|(g, _)| *g).collect();
    window_ids.sort_unstable();

    progress.set_message("counting values");
    let analysed: Vec<(&ColumnProfile, Kind, bool)> = roles
        .iter()
        .filter_map(|(c, r)| match r {
            Role::Feature(k) => Some((*c, *k, true)),
            Role::Model(k) => Some((*c, *k, false)),
            Role::Skipped(_) => None,
        })
        .collect();
    // One query per column; two at a time keep both cores busy between
    // polars' own parallel sections.
    let profiles: Vec<sample::GroupedProfiles> = analysed
        .par_iter()
        .map(|(reference, _, _)| {
            let value_type = current.value_type(&reference.name).expect("shared column");
            let counts = current.value_counts(&reference.name, &grouping)?;
            Ok(sample::profiles_from_counts(
                &reference.name,
                value_type,
                &counts,
                CURRENT_EXACT_CAP,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    progress.set_message("testing columns");
    let whole: Vec<(ColumnProfile, ColumnResult)> = analysed
        .par_iter()
        .zip(profiles.par_iter())
        .map(|((reference, kind, _), p)| {
            let result = test_column(opts, &reference.name, *kind, reference, &p.whole);
            (p.whole.clone(), result)
        })
        .collect();

    // Performance from labels, per window and in all.
    let has = |c: &str| current.value_type(c).is_some();
    let task = if has(&opts.prediction) && has(&opts.label) {
        Some(predictions::task_of(
            &current.value_counts(&opts.prediction, &Grouping::Whole)?,
        ))
    } else {
        None
    };
    let mut outcomes: BTreeMap<Option<i64>, OutcomeCounts> = BTreeMap::new();
    let mut bins: BTreeMap<Option<i64>, Vec<ConfidenceBin>> = BTreeMap::new();
    if let Some(t) = task {
        progress.set_message("scoring predictions");
        for (g, c) in current.outcomes(
            &opts.prediction,
            &opts.label,
            t == predictions::Task::Regression,
            &grouping,
        )? {
            outcomes.insert(g, c);
        }
        if t == predictions::Task::Classification && has(&opts.confidence) {
            for (g, b, c) in current.confidence_bins(
                &opts.prediction,
                &opts.label,
                &opts.confidence,
                predictions::CALIBRATION_BINS,
                &grouping,
            )? {
                bins.entry(g).or_insert_with(|| {
                    vec![ConfidenceBin::default(); predictions::CALIBRATION_BINS]
                })[b] = c;
            }
        }
    }

    // Windows.
    let window_label = |id: i64| -> String {
        match opts.window {
            Some(Window::Time(width)) => window::format_micros(id * width, width),
            Some(Window::Rows(size)) => {
                let start = id as u64 * size as u64;
                format!("rows {}..{}", start, (start + size as u64).min(n_rows))
            }
            None => String::new(),
        }
    };
    let mut windows: Vec<WindowResult> = Vec::new();
    if opts.window.is_some() {
        progress.set_message(format!("testing {} windows", window_ids.len()));
        windows = window_ids
            .par_iter()
            .map(|&id| {
                let columns = analysed
                    .iter()
                    .zip(&profiles)
                    .map(|((reference, kind, _), p)| {
                        let empty = ColumnProfile::empty(&reference.name, &p.whole.value_type);
                        let cur = p.groups.get(&Some(id)).unwrap_or(&empty);
                        test_column(opts, &reference.name, *kind, reference, cur)
                    })
                    .collect();
                WindowResult {
                    label: window_label(id),
                    rows: group_sizes
                        .iter()
                        .find(|(g, _)| *g == Some(id))
                        .map_or(0, |(_, n)| *n),
                    columns,
                    performance: task.map(|t| {
                        predictions::performance(
                            t,
                            outcomes.get(&Some(id)).unwrap_or(&OutcomeCounts::default()),
                        )
                    }),
                    ece: bins
                        .get(&Some(id))
                        .and_then(|b| predictions::calibration(b))
                        .map(|c| c.ece),
                }
            })
            .collect();
    }
    progress.finish_and_clear();

    // The report.
    let feature_results: Vec<&ColumnResult> = whole
        .iter()
        .zip(&analysed)
        .filter(|(_, (_, _, feature))| *feature)
        .map(|((_, r), _)| r)
        .collect();
    let owned: Vec<ColumnResult> = feature_results.iter().map(|r| (*r).clone()).collect();
    let (drifted, tested) = drift_share_of(&owned);
    let share = if tested == 0 {
        0.0
    } else {
        drifted as f64 / tested as f64
    };
    let dataset_drift = tested > 0 && share >= opts.drift_share;

    let mut report = Report::new(
        "drift",
        format!(
            "Data drift: {} against {}",
            opts.current.display(),
            opts.baseline.display()
        ),
    );
    report.figure("dataset_drift", "Dataset drift", dataset_drift);
    report.figure("drifted_columns", "Drifted columns", drifted);
    report.figure("tested_columns", "Tested columns", tested);
    report.figure("drift_share", "Share of drifted columns", share);
    report.figure("baseline_rows", "Baseline rows", baseline.rows);
    report.figure("current_rows", "Current rows", n_rows);

    report.setting("baseline", "Baseline", opts.baseline.display().to_string());
    report.setting("current", "Current", opts.current.display().to_string());
    report.setting(
        "stattest",
        "Test selection",
        match opts.stattest {
            Some(t) => t.name().to_string(),
            None => "auto (Evidently's rule: reference <= 1000 rows: ks / chisquare / z; larger: wasserstein / jensenshannon)".to_string(),
        },
    );
    report.setting(
        "threshold",
        "Threshold",
        match opts.threshold {
            Some(t) => crate::report::format_float(t),
            None => "test default (p-value tests 0.05, distances 0.1)".to_string(),
        },
    );
    report.setting(
        "drift_share",
        "Dataset drift when share of drifted columns >=",
        opts.drift_share,
    );
    report.setting(
        "fail_on",
        "Fail on",
        match opts.fail_on {
            FailOn::Drift => "drift",
            FailOn::AnyWindow => "any-window",
            FailOn::Never => "never",
        },
    );
    report.setting("window", "Window", opts.window.map(|w| w.to_string()));
    report.setting("timestamp", "Timestamp column", timestamp.clone());
    report.setting(
        "exact_cap",
        "Exact distinct values kept per baseline column",
        baseline.exact_cap,
    );

    // Columns.
    let mut columns = Section::new(
        "columns",
        "Feature drift",
        &[
            ("column", "Column"),
            ("kind", "Kind"),
            ("test", "Test"),
            ("statistic", "Statistic"),
            ("p_value", "p-value"),
            ("threshold", "Threshold"),
            ("drift", "Drift"),
            ("status", "Status"),
            ("detail", "Detail"),
        ],
    );
    let mut model_section = Section::new(
        "predictions",
        "Predictions",
        &[
            ("column", "Column"),
            ("kind", "Kind"),
            ("test", "Test"),
            ("statistic", "Statistic"),
            ("p_value", "p-value"),
            ("threshold", "Threshold"),
            ("drift", "Drift"),
            ("status", "Status"),
            ("detail", "Detail"),
        ],
    );
    let mut quality_section = Section::new(
        "quality",
        "Data quality against the baseline",
        &[
            ("column", "Column"),
            ("null_rate_baseline", "Null % base"),
            ("null_rate_current", "Null % cur"),
            ("outside_range_share", "Outside range"),
            ("unseen_categories", "Unseen cats"),
            ("mean_shift_sd", "Mean shift (sd)"),
            ("flags", "Flags"),
        ],
    );
    quality_section.notes.push(format!(
        "Flags: null rate change >= {} pp, >= {}% of values outside the baseline range or in unseen categories, mean shift beyond {} sd, constant columns.",
        quality::NULL_RATE_CHANGE * 100.0,
        quality::OUTSIDE_SHARE * 100.0,
        quality::MEAN_SHIFT_SD
    ));
    let mut flagged_quality = 0usize;
    for ((cur, result), (reference, kind, feature)) in whole.iter().zip(&analysed) {
        let row = result_row(result);
        let chart = histogram_chart(&reference.name, *kind, reference, cur);
        let q = quality::check(reference, cur);
        if !q.flags.is_empty() {
            flagged_quality += 1;
        }
        quality_section.push(vec![
            reference.name.clone().into(),
            (100.0 * q.null_rate_reference).into(),
            (100.0 * q.null_rate_current).into(),
            q.outside_range_share.into(),
            q.unseen_categories.into(),
            q.mean_shift_sd.into(),
            q.flags.join("; ").into(),
        ]);
        let section = if *feature {
            &mut columns
        } else {
            &mut model_section
        };
        section.push(row);
        if let Some(c) = chart {
            section.charts.push(c);
        }
        if !windows.is_empty() {
            let stat: Vec<f64> = windows
                .iter()
                .map(|w| {
                    w.columns
                        .iter()
                        .find(|r| r.name == reference.name)
                        .and_then(|r| r.outcome.as_ref().ok())
                        .map(|o| o.p_value.unwrap_or(o.statistic))
                        .unwrap_or(f64::NAN)
                })
                .collect();
            section.charts.push(Chart::Trend {
                title: format!(
                    "{} by window ({}{})",
                    reference.name,
                    result.test,
                    if result.test.uses_p_value() {
                        " p-value"
                    } else {
                        ""
                    }
                ),
                points: windows.iter().map(|w| w.label.clone()).collect(),
                series: vec![Series {
                    name: result.test.name().into(),
                    values: stat,
                }],
                threshold: Some(result.threshold),
            });
        }
    }
    report.figure(
        "quality_flagged_columns",
        "Columns with quality flags",
        flagged_quality,
    );

    // Skipped columns.
    let mut skipped = Section::new(
        "skipped",
        "Columns not tested",
        &[("column", "Column"), ("reason", "Reason")],
    );
    for (c, role) in &roles {
        if let Role::Skipped(reason) = role {
            skipped.push(vec![c.name.clone().into(), reason.clone().into()]);
        }
    }
    for c in &baseline.columns {
        if current.value_type(&c.name).is_none() && wanted(&c.name) {
            skipped.push(vec![
                c.name.clone().into(),
                "missing from the current data".into(),
            ]);
        }
    }
    for (name, _) in &current.columns {
        if baseline.column(name).is_none() && wanted(name) && Some(name) != timestamp.as_ref() {
            skipped.push(vec![name.clone().into(), "not in the baseline".into()]);
        }
    }

    // Performance and calibration over all rows.
    if let Some(t) = task {
        let mut total = OutcomeCounts::default();
        for c in outcomes.values() {
            predictions::add_outcomes(&mut total, c);
        }
        let perf = predictions::performance(t, &total);
        report.figure("labelled_rows", "Rows with a label", perf.labelled);
        if let Some(a) = perf.accuracy {
            report.figure("accuracy", "Accuracy", a);
        }
        if let Some(r) = perf.rmse {
            report.figure("rmse", "RMSE", r);
        }
        let mut all_bins = vec![ConfidenceBin::default(); predictions::CALIBRATION_BINS];
        for per_window in bins.values() {
            for (sum, b) in all_bins.iter_mut().zip(per_window) {
                sum.rows += b.rows;
                sum.confidence_sum += b.confidence_sum;
                sum.hits += b.hits;
            }
        }
        if let Some(cal) = predictions::calibration(&all_bins) {
            report.figure("ece", "Expected calibration error", cal.ece);
            let mut s = Section::new(
                "calibration",
                "Reliability (15 equal-width confidence bins)",
                &[
                    ("bin", "Confidence"),
                    ("rows", "Rows"),
                    ("mean_confidence", "Mean confidence"),
                    ("accuracy", "Accuracy"),
                    ("gap", "Gap"),
                ],
            );
            for b in cal.bins.iter().filter(|b| b.count > 0) {
                s.push(vec![
                    format!("({:.3}, {:.3}]", b.lower, b.upper).into(),
                    b.count.into(),
                    b.mean_confidence.into(),
                    b.accuracy.into(),
                    (b.accuracy - b.mean_confidence).into(),
                ]);
            }
            report.sections.push(s);
        }
    }

    // Windows table.
    let mut drifted_windows = Vec::new();
    if !windows.is_empty() {
        let mut s = Section::new(
            "windows",
            "Drift by window",
            &[
                ("window", "Window"),
                ("rows", "Rows"),
                ("drifted_columns", "Drifted"),
                ("tested_columns", "Tested"),
                ("drift_share", "Share"),
                ("dataset_drift", "Dataset drift"),
                ("drifted", "Drifted columns"),
                ("labelled_rows", "Labelled"),
                ("accuracy", "Accuracy"),
                ("rmse", "RMSE"),
                ("ece", "ECE"),
            ],
        );
        if rows_without_time > 0 {
            s.notes.push(format!(
                "{rows_without_time} rows have no timestamp and are in no window."
            ));
        }
        let mut shares = Vec::new();
        let mut accuracy = Vec::new();
        for w in &windows {
            let features: Vec<ColumnResult> = w
                .columns
                .iter()
                .zip(&analysed)
                .filter(|(_, (_, _, f))| *f)
                .map(|(r, _)| r.clone())
                .collect();
            let (d, t) = drift_share_of(&features);
            let sh = if t == 0 { 0.0 } else { d as f64 / t as f64 };
            let dd = t > 0 && sh >= opts.drift_share;
            if dd {
                drifted_windows.push(w.label.clone());
            }
            shares.push(sh);
            let names: Vec<&str> = features
                .iter()
                .filter(|r| matches!(&r.outcome, Ok(o) if o.drift))
                .map(|r| r.name.as_str())
                .collect();
            let perf = w.performance.clone().unwrap_or_default();
            accuracy.push(perf.accuracy.unwrap_or(f64::NAN));
            s.push(vec![
                w.label.clone().into(),
                w.rows.into(),
                d.into(),
                t.into(),
                sh.into(),
                Cell::Status(if dd { Status::Drift } else { Status::Ok }),
                names.join(", ").into(),
                w.performance.as_ref().map(|p| p.labelled).into(),
                perf.accuracy.into(),
                perf.rmse.into(),
                w.ece.into(),
            ]);
        }
        s.drop_empty_columns(&["labelled_rows", "accuracy", "rmse", "ece"]);
        let points: Vec<String> = windows.iter().map(|w| w.label.clone()).collect();
        s.charts.push(Chart::Trend {
            title: "Share of drifted columns by window".into(),
            points: points.clone(),
            series: vec![Series {
                name: "drift share".into(),
                values: shares,
            }],
            threshold: Some(opts.drift_share),
        });
        if accuracy.iter().any(|a| a.is_finite()) {
            s.charts.push(Chart::Trend {
                title: "Accuracy by window (labelled rows)".into(),
                points,
                series: vec![Series {
                    name: "accuracy".into(),
                    values: accuracy,
                }],
                threshold: None,
            });
        }
        report.figure("drifted_windows", "Drifted windows", drifted_windows.len());
        report.figure(
            "first_drifted_window",
            "First drifted window",
            drifted_windows.first().cloned(),
        );
        report.sections.insert(0, s);
    }

    for (cur, _) in &whole {
        if cur.rank_error > 0 {
            report.warnings.push(format!(
                "column '{}' has more than {} distinct values in the current data: its tests use a summary whose ranks are within {} observations",
                cur.name, CURRENT_EXACT_CAP, cur.rank_error
            ));
        }
    }
    let errors = whole.iter().filter(|(_, r)| r.outcome.is_err()).count();
    if errors > 0 {
        report.warnings.push(format!(
            "{errors} column(s) could not be tested; see the status column"
        ));
    }
    report.sections.insert(0, columns);
    if !model_section.rows.is_empty() {
        report.sections.insert(1, model_section);
    }
    report.sections.push(quality_section);
    if !skipped.rows.is_empty() {
        report.sections.push(skipped);
    }

    let rule = format!(
        "dataset drift when at least {} of tested feature columns drift",
        crate::report::format_float(opts.drift_share)
    );
    report.gate = match opts.fail_on {
        FailOn::Never => Gate {
            outcome: Outcome::Pass,
            rule: "report only (--fail-on never)".into(),
            message: if dataset_drift {
                format!("drift in {drifted} of {tested} columns (not failing: --fail-on never)")
            } else {
                format!("no dataset drift: {drifted} of {tested} columns drifted")
            },
        },
        FailOn::Drift => Gate {
            outcome: if dataset_drift {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            rule,
            message: format!(
                "{}: {drifted} of {tested} columns drifted (share {})",
                if dataset_drift {
                    "dataset drift"
                } else {
                    "no dataset drift"
                },
                crate::report::format_float(share)
            ),
        },
        FailOn::AnyWindow => {
            let fail = dataset_drift || !drifted_windows.is_empty();
            Gate {
                outcome: if fail { Outcome::Fail } else { Outcome::Pass },
                rule: format!("{rule}, in the whole current data or in any window"),
                message: if drifted_windows.is_empty() {
                    format!("no window drifted; whole data: {drifted} of {tested} columns drifted")
                } else {
                    format!(
                        "{} window(s) drifted, first {}",
                        drifted_windows.len(),
                        drifted_windows[0]
                    )
                },
            }
        }
    };
    Ok(report)
}

fn result_row(r: &ColumnResult) -> Vec<Cell> {
    match &r.outcome {
        Ok(o) => vec![
            r.name.clone().into(),
            r.kind.name().into(),
            r.test.name().into(),
            o.statistic.into(),
            o.p_value.into(),
            r.threshold.into(),
            o.drift.into(),
            Cell::Status(if o.drift { Status::Drift } else { Status::Ok }),
            Cell::Null,
        ],
        Err(reason) => vec![
            r.name.clone().into(),
            r.kind.name().into(),
            r.test.name().into(),
            Cell::Null,
            Cell::Null,
            r.threshold.into(),
            Cell::Null,
            Cell::Status(Status::Error),
            reason.clone().into(),
        ],
    }
}
