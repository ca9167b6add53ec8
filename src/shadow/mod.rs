//! `mlctl shadow-compare`: the offline comparison of a live model (the
//! primary) and a new one (the candidate) on the same requests, with a
//! verdict a release pipeline can act on.
//!
//! Two sources of paired answers:
//! * replay (`--primary M --candidate M --inputs LOG`): both models answer
//!   the logged rows on mlctl's runtime (`replay.rs`);
//! * logs (`--primary-log --candidate-log [--join]`): two prediction logs
//!   a service wrote in shadow mode, joined on the request id (`logs.rs`).
//!
//! Either way the answers are counted by `compare.rs` and judged here:
//! flips, McNemar's test, accuracy or RMSE with confidence intervals, the
//! distance between the score distributions, all per slice with Holm's
//! correction, then gates and a pass / marginal / fail verdict.

pub mod compare;
mod logs;
pub mod outputs;
mod replay;

use std::path::{Path, PathBuf};

use compare::{ClassLabels, Comparison, Labels, Tally, Task};
use outputs::ClassCodes;

use crate::data::{Entries, Frame, GroupCodes, Values, NULL};
use crate::error::{Error, Result};
use crate::report::{Cell, Chart, Gate, Outcome, Report, Section, Series, Status};
use crate::stats::paired::{self, Moments};
use crate::stats::{binning, divergence, ks, latency, Runs};

/// Where the paired answers come from.
#[derive(Debug, Clone)]
pub enum Source {
    Replay(ReplayOptions),
    Logs(LogOptions),
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub primary: PathBuf,
    pub candidate: PathBuf,
    pub inputs: PathBuf,
    /// Feature columns for a single 2-D model input, in order.
    pub columns: Vec<String>,
    pub exclude: Vec<String>,
    pub batch_size: usize,
    pub device: String,
    pub threads: Option<usize>,
    /// Run the primary a second time to measure its own noise.
    pub baseline_noise: bool,
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub primary: PathBuf,
    pub candidate: PathBuf,
    /// A second log of the primary on the same requests (its noise).
    pub noise: Option<PathBuf>,
    /// Join column; None: `request_id` when both logs have it, else the
    /// row order (both logs must then have as many rows).
    pub join: Option<String>,
    pub prediction: String,
    /// Rows of all logs together above which the join runs in partitions
    /// of the ids, so that memory holds about this many rows at a time.
    pub partition_rows: usize,
    /// Score column; None: `confidence`, then `score`, when present.
    pub score: Option<String>,
}

/// The gates; each is off unless set.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    pub max_flip_rate: Option<f64>,
    pub max_negative_flip_rate: Option<f64>,
    pub max_accuracy_drop: Option<f64>,
    pub max_rmse_increase: Option<f64>,
    pub fail_on_slice_regression: bool,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub source: Source,
    /// Label column; None: `label` when present.
    pub label: Option<String>,
    pub slice_by: Vec<String>,
    /// Forces the task when the outputs could be read either way.
    pub task: Option<Task>,
    pub gates: Gates,
    /// Significance level of the tests (after Holm's correction for slices).
    pub alpha: f64,
    /// PSI between the score distributions from which the verdict is
    /// marginal.
    pub max_psi: f64,
    /// Slices listed in the report, worst first (every flagged slice is
    /// listed, whatever this says).
    pub top_slices: usize,
    pub show_progress: bool,
}

/// The default `partition_rows`: the join holds about 350 bytes a row with
/// string ids, so 4M rows stay near 1.4 GB.
pub const PARTITION_ROWS: usize = 4_000_000;

/// Confidence level of every interval in the report.
pub const CONFIDENCE: f64 = 0.95;

/// One model's replay timing.
#[derive(Debug, Clone)]
pub struct Timing {
    pub side: &'static str,
    pub path: PathBuf,
    pub load_seconds: f64,
    pub batch_ms: Vec<f64>,
    pub rows: u64,
    pub seconds: f64,
}

impl Timing {
    fn new(side: &'static str, path: &Path, load_seconds: f64) -> Self {
        Timing {
            side,
            path: path.to_path_buf(),
            load_seconds,
            batch_ms: Vec::new(),
            rows: 0,
            seconds: 0.0,
        }
    }

    fn add(&mut self, seconds: f64, rows: usize) {
        self.batch_ms.push(seconds * 1e3);
        self.rows += rows as u64;
        self.seconds += seconds;
    }
}

/// Rows matched and not matched between two logs.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub primary_rows: u64,
    pub candidate_rows: u64,
    pub matched: u64,
    pub only_primary: u64,
    pub only_candidate: u64,
    pub primary_duplicates: u64,
    pub candidate_duplicates: u64,
    pub noise_unmatched: u64,
    pub join: String,
}

/// What a source produced: the counts and what the report says about them.
pub struct Compared {
    pub comparison: Comparison,
    pub slice_names: Vec<String>,
    pub codes: ClassCodes,
    pub roles: Vec<(String, String)>,
    pub timings: Vec<Timing>,
    pub replay_seconds: Option<f64>,
    pub coverage: Option<Coverage>,
    pub label: Option<String>,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

impl Compared {
    fn new(comparison: Comparison, slice_names: Vec<String>, codes: ClassCodes) -> Self {
        Compared {
            comparison,
            slice_names,
            codes,
            roles: Vec::new(),
            timings: Vec::new(),
            replay_seconds: None,
            coverage: None,
            label: None,
            notes: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Slice keys (the `--slice-by` columns' values, joined) as small indices.
#[derive(Debug, Default)]
pub(crate) struct SliceKeys {
    /// foldhash: a million lookups of short keys cost a quarter of SipHash's.
    index: foldhash::HashMap<String, u32>,
    /// Short values by their Arrow view (`Frame::for_each_text_keyed`): a
    /// 16-byte key instead of the text's bytes.
    by_view: foldhash::HashMap<u128, u32>,
    pub names: Vec<String>,
}

impl SliceKeys {
    fn key(&mut self, key: String) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(key.clone());
        self.index.insert(key, i);
        i
    }

    /// Each row's slice, from a single slice column read as dictionary
    /// codes: each entry keyed on its first row, in the rows' order (the
    /// slices are numbered as `read` numbers them).
    /// `out` is a buffer to fill (a range's before, so that the next range
    /// does not touch new memory).
    pub(crate) fn read_codes(&mut self, groups: &[GroupCodes], mut out: Vec<u32>) -> Vec<u32> {
        /// An entry not met yet in the group.
        const UNSEEN: u32 = u32::MAX;
        out.clear();
        out.resize(groups.iter().map(|g| g.indices.len()).sum(), 0);
        let mut rows = out.as_mut_slice();
        for group in groups {
            // Each entry's slice, the null's last: a plain table, so that
            // a row is a load and a store (a slice is keyed on the entry's
            // first row, the only branch taken).
            let null_slot = group.entries.len();
            let mut slices = vec![UNSEEN; null_slot + 1];
            let (here, rest) = rows.split_at_mut(group.indices.len());
            for (out, &i) in here.iter_mut().zip(&group.indices) {
                let at = if i == NULL { null_slot } else { i as usize };
                let mut slice = slices[at];
                if slice == UNSEEN {
                    let text = match (&group.entries, i) {
                        (_, NULL) => "(null)".to_string(),
                        (Entries::Text(v), i) => v[i as usize].clone(),
                        (Entries::Int(v), i) => v[i as usize].to_string(),
                    };
                    slice = match self.index.get(&text) {
                        Some(&slice) => slice,
                        None => self.key(text),
                    };
                    slices[at] = slice;
                }
                *out = slice;
            }
            rows = rest;
        }
        out
    }

    /// Each row's slice, or None without `--slice-by`.
    pub(crate) fn read(&mut self, frame: &Frame, columns: &[String]) -> Result<Option<Vec<u32>>> {
        if columns.is_empty() {
            return Ok(None);
        }
        if let [column] = columns {
            let mut out = Vec::with_capacity(frame.height());
            frame.for_each_text_keyed(column, |value, view| {
                if let Some(&i) = view.and_then(|v| self.by_view.get(&v)) {
                    return out.push(i);
                }
                let value = value.unwrap_or("(null)");
                let i = match self.index.get(value) {
                    Some(&i) => i,
                    None => self.key(value.to_string()),
                };
                if let Some(v) = view {
                    self.by_view.insert(v, i);
                }
                out.push(i);
            })?;
            return Ok(Some(out));
        }
        let texts: Vec<Vec<Option<String>>> = columns
            .iter()
            .map(|c| frame.text(c))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(frame.height());
        for r in 0..frame.height() {
            let key = texts
                .iter()
                .map(|t| t[r].as_deref().unwrap_or("(null)"))
                .collect::<Vec<_>>()
                .join(" | ");
            out.push(self.key(key));
        }
        Ok(Some(out))
    }
}

/// The label column's values in a range, in both readings; the task picks.
pub(crate) struct LabelValues {
    column: Option<String>,
    /// Each row's class, `missing` where it has none (see `ClassLabels`).
    classes: Option<Vec<i64>>,
    missing: i64,
    numbers: Option<Vec<f64>>,
    /// The classes are the column's integers: their numbers are made from
    /// them when a regression asks (most replays are classifications).
    integers: bool,
}

impl LabelValues {
    /// No label column.
    fn none() -> Self {
        LabelValues {
            column: None,
            classes: None,
            missing: i64::MAX,
            numbers: None,
            integers: false,
        }
    }

    /// Labels from each row's class, if it has one.
    fn from_options(
        column: Option<String>,
        classes: Option<Vec<Option<i64>>>,
        numbers: Option<Vec<f64>>,
        integers: bool,
    ) -> Self {
        let missing = classes.as_ref().map_or(i64::MAX, |c| {
            compare::missing_label(c.iter().flatten().copied())
        });
        LabelValues {
            column,
            classes: classes.map(|c| c.into_iter().map(|y| y.unwrap_or(missing)).collect()),
            missing,
            numbers,
            integers,
        }
    }

    /// The class buffer, for the next range's labels.
    pub(crate) fn into_buffer(self) -> Vec<i64> {
        self.classes.unwrap_or_default()
    }

    fn for_task(&mut self, task: Task, start: usize, n: usize, path: &Path) -> Result<Labels<'_>> {
        let Some(column) = &self.column else {
            return Ok(Labels::None);
        };
        if let (Task::Regression, None, true, Some(classes)) =
            (task, &self.numbers, self.integers, &self.classes)
        {
            let missing = self.missing;
            let numbers = classes
                .iter()
                .map(|&x| if x == missing { f64::NAN } else { x as f64 });
            self.numbers = Some(numbers.collect());
        }
        match task {
            Task::Classification => match &self.classes {
                Some(c) => Ok(Labels::Classes(ClassLabels {
                    values: &c[start..start + n],
                    missing: self.missing,
                })),
                None => Err(Error::input(
                    path,
                    format!("label column '{column}' holds numbers that are not classes; for a regression say --task regression"),
                )),
            },
            Task::Regression => match &self.numbers {
                Some(v) => Ok(Labels::Values(&v[start..start + n])),
                None => Err(Error::input(
                    path,
                    format!("label column '{column}' holds classes, but the models give numbers (a regression)"),
                )),
            },
        }
    }
}

/// Reads the label column, when there is one.
pub(crate) struct LabelReader {
    column: Option<String>,
}

impl LabelReader {
    /// `--label` (which must exist), else `label` when present.
    fn choose(opts: &Options, has: impl Fn(&str) -> bool, path: &Path) -> Result<Option<String>> {
        match &opts.label {
            Some(l) if has(l) => Ok(Some(l.clone())),
            Some(l) => Err(Error::input(path, format!("no label column '{l}'"))),
            None => Ok(has("label").then(|| "label".to_string())),
        }
    }

    fn new(column: Option<String>) -> Self {
        LabelReader { column }
    }

    /// The labels of a label column read as dictionary codes: integers
    /// as they are, texts as class codes (each entry's code made on its
    /// first row, in the rows' order, as `read` makes them).
    /// `classes` is a buffer to fill (a range's before).
    fn read_codes(
        &self,
        groups: &[GroupCodes],
        codes: &mut ClassCodes,
        mut classes: Vec<i64>,
    ) -> LabelValues {
        classes.clear();
        classes.reserve(groups.iter().map(|g| g.indices.len()).sum());
        let mut integers = true;
        // Each group's entries' classes (the missing label's last, below).
        let mut entries: Vec<Vec<i64>> = Vec::with_capacity(groups.len());
        for group in groups {
            let coded = match &group.entries {
                Entries::Int(values) => values.clone(),
                Entries::Text(texts) => {
                    integers = false;
                    // Coded on each entry's first row, in the rows' order.
                    let mut coded: Vec<Option<i64>> = vec![None; texts.len()];
                    for &i in group.indices.iter().filter(|&&i| i != NULL) {
                        coded[i as usize].get_or_insert_with(|| codes.code(&texts[i as usize]));
                    }
                    coded.into_iter().map(|c| c.unwrap_or(0)).collect()
                }
            };
            entries.push(coded);
        }
        let missing = compare::missing_label(entries.iter().flatten().copied());
        for (group, mut coded) in groups.iter().zip(entries) {
            let null_slot = coded.len();
            coded.push(missing);
            classes.extend(
                group
                    .indices
                    .iter()
                    .map(|&i| coded[if i == NULL { null_slot } else { i as usize }]),
            );
        }
        LabelValues {
            column: self.column.clone(),
            classes: Some(classes),
            missing,
            numbers: None,
            integers,
        }
    }

    fn read(&mut self, frame: &Frame, codes: &mut ClassCodes) -> Result<LabelValues> {
        let Some(column) = &self.column else {
            return Ok(LabelValues::none());
        };
        let (classes, numbers, integers) = match frame.values(column)? {
            Values::Int(v) => (Some(v), None, true),
            Values::Bool(v) => (
                Some(v.iter().map(|x| x.map(i64::from)).collect()),
                None,
                false,
            ),
            Values::Text(v) => (
                Some(
                    v.iter()
                        .map(|x| x.as_deref().map(|t| codes.code(t)))
                        .collect(),
                ),
                None,
                false,
            ),
            Values::Float(v) => {
                let numbers: Vec<f64> = v.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
                let integral = numbers
                    .iter()
                    .all(|x| x.is_nan() || ClassCodes::number(*x).is_some());
                let classes = integral.then(|| {
                    numbers
                        .iter()
                        .map(|x| ClassCodes::number(*x))
                        .collect::<Vec<_>>()
                });
                (classes, Some(numbers), false)
            }
        };
        Ok(LabelValues::from_options(
            Some(column.clone()),
            classes,
            numbers,
            integers,
        ))
    }
}

pub fn run(opts: &Options) -> Result<Report> {
    check_gates(opts)?;
    let compared = match &opts.source {
        Source::Replay(replay) => replay::run(opts, replay)?,
        Source::Logs(logs) => logs::run(opts, logs)?,
    };
    judge(opts, compared)
}

fn check_gates(opts: &Options) -> Result<()> {
    let g = &opts.gates;
    for (flag, value) in [
        ("--max-flip-rate", g.max_flip_rate),
        ("--max-negative-flip-rate", g.max_negative_flip_rate),
        ("--max-accuracy-drop", g.max_accuracy_drop),
    ] {
        if let Some(v) = value {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::usage(format!(
                    "{flag} must be a share between 0 and 1, got {v}"
                )));
            }
        }
    }
    if let Some(v) = g.max_rmse_increase {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::usage(format!(
                "--max-rmse-increase must be 0 or more, got {v}"
            )));
        }
    }
    if !(opts.alpha > 0.0 && opts.alpha < 1.0) {
        return Err(Error::usage(format!(
            "--alpha must be between 0 and 1, got {}",
            opts.alpha
        )));
    }
    Ok(())
}

fn rate(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

fn rmse(m: &Moments) -> Option<f64> {
    (m.n > 0).then(|| m.mean.max(0.0).sqrt())
}

/// The RMSE interval from the t interval of the mean squared error.
fn rmse_interval(m: &Moments) -> (Option<f64>, Option<f64>) {
    match paired::mean_interval(m, CONFIDENCE) {
        Some((lo, hi)) => (Some(lo.max(0.0).sqrt()), Some(hi.max(0.0).sqrt())),
        None => (None, None),
    }
}

/// Whether a tally shows the candidate worse, and the p-value of the test
/// that says so (McNemar for classes, the paired t-test on squared errors
/// for numbers). None when nothing could be tested.
struct Regression {
    p_value: f64,
    worse: bool,
    test: &'static str,
}

fn regression_test(task: Task, t: &Tally) -> Option<Regression> {
    match task {
        Task::Classification => {
            if t.labelled == 0 {
                return None;
            }
            let m = paired::mcnemar(t.negative_flips, t.positive_flips);
            Some(Regression {
                p_value: m.p_value,
                worse: t.negative_flips > t.positive_flips,
                test: if m.exact {
                    "McNemar (exact binomial)"
                } else {
                    "McNemar (chi-square, continuity-corrected)"
                },
            })
        }
        Task::Regression => paired::paired_t(&t.se_difference).map(|r| Regression {
            p_value: r.p_value,
            worse: t.se_difference.mean > 0.0,
            test: "paired t-test on squared errors",
        }),
    }
}

/// Per-slice tests, Holm-corrected over the slices that could be tested.
struct SliceResult {
    index: usize,
    p_value: Option<f64>,
    adjusted: Option<f64>,
    flagged: bool,
}

fn slice_results(opts: &Options, cmp: &Comparison) -> Vec<SliceResult> {
    let tests: Vec<Option<Regression>> = cmp
        .slices
        .iter()
        .map(|t| regression_test(cmp.task, t))
        .collect();
    let tested: Vec<usize> = (0..tests.len()).filter(|&i| tests[i].is_some()).collect();
    let raw: Vec<f64> = tested
        .iter()
        .map(|&i| tests[i].as_ref().expect("tested").p_value)
        .collect();
    let adjusted = paired::holm(&raw);
    let mut out: Vec<SliceResult> = (0..tests.len())
        .map(|i| SliceResult {
            index: i,
            p_value: tests[i].as_ref().map(|r| r.p_value),
            adjusted: None,
            flagged: false,
        })
        .collect();
    for (k, &i) in tested.iter().enumerate() {
        out[i].adjusted = Some(adjusted[k]);
        let worse = tests[i].as_ref().is_some_and(|r| r.worse);
        out[i].flagged = worse && adjusted[k] < opts.alpha;
    }
    out
}

/// Equal-width bins over both samples, for the overlaid score chart,
/// counted from the samples' runs (distinct values and their counts, as
/// the distances already have them): a few thousand runs instead of two
/// passes over up to 2M scores each.
fn score_chart(primary: &Runs, candidate: &Runs) -> Option<Chart> {
    let ends = |r: &Runs| Some((*r.values.first()?, *r.values.last()?));
    let (lo, hi) = match (ends(primary), ends(candidate)) {
        (Some((a, b)), Some((c, d))) => (a.min(c), b.max(d)),
        (Some(e), None) | (None, Some(e)) => e,
        (None, None) => return None,
    };
    const BINS: usize = 20;
    let width = if hi > lo {
        (hi - lo) / BINS as f64
    } else {
        1.0
    };
    let share = |runs: &Runs| {
        let mut bins = [0u64; BINS];
        for (&v, &count) in runs.values.iter().zip(&runs.counts) {
            bins[(((v - lo) / width) as usize).min(BINS - 1)] += count;
        }
        let total = runs.counts.iter().sum::<u64>().max(1) as f64;
        bins.iter().map(|&b| b as f64 / total).collect()
    };
    Some(Chart::Histogram {
        title: "Score distributions".into(),
        bins: (0..BINS)
            .map(|b| crate::report::format_float(lo + width * b as f64))
            .collect(),
        series: vec![
            Series {
                name: "primary".into(),
                values: share(primary),
            },
            Series {
                name: "candidate".into(),
                values: share(candidate),
            },
        ],
    })
}

/// PSI (Evidently's binning) and the two-sample KS test on the sampled
/// paired scores.
struct Distances {
    psi: f64,
    ks: ks::KsResult,
    /// The primary's and the candidate's sampled scores, as runs.
    runs: (Runs, Runs),
}

fn distances(cmp: &Comparison) -> Option<Distances> {
    let s = &cmp.scores;
    if s.is_empty() {
        return None;
    }
    let (a, b) = s.runs();
    let mut binned = binning::bin_numeric(&a, &b, false);
    binning::fill_zeroes(&mut binned.reference);
    binning::fill_zeroes(&mut binned.current);
    Some(Distances {
        psi: divergence::psi(&binned.reference, &binned.current),
        ks: ks::ks_2samp(&a, &b),
        runs: (a, b),
    })
}

fn judge(opts: &Options, compared: Compared) -> Result<Report> {
    let cmp = &compared.comparison;
    let task = cmp.task;
    let all = &cmp.overall;
    let noise = cmp.with_noise;
    let g = &opts.gates;
    if task == Task::Regression {
        for (flag, set) in [
            ("--max-flip-rate", g.max_flip_rate.is_some()),
            (
                "--max-negative-flip-rate",
                g.max_negative_flip_rate.is_some(),
            ),
            ("--max-accuracy-drop", g.max_accuracy_drop.is_some()),
        ] {
            if set {
                return Err(Error::usage(format!(
                    "{flag} is for classifiers; these models give numbers (a regression): use --max-rmse-increase"
                )));
            }
        }
    } else if g.max_rmse_increase.is_some() {
        return Err(Error::usage(
            "--max-rmse-increase is for regressions; these models give classes: use --max-accuracy-drop",
        ));
    }

    let (title, source_setting) = match &opts.source {
        Source::Replay(r) => (
            format!(
                "Shadow comparison: {} vs {} replayed on {}",
                r.candidate.display(),
                r.primary.display(),
                r.inputs.display()
            ),
            "replay",
        ),
        Source::Logs(l) => (
            format!(
                "Shadow comparison: {} vs {}",
                l.candidate.display(),
                l.primary.display()
            ),
            "logs",
        ),
    };
    let mut report = Report::new("shadow-compare", title);
    report.warnings.extend(compared.warnings.iter().cloned());

    // Summary.
    let flips = all.counted_flips(noise);
    let flip_rate = rate(flips, all.rows);
    let negative_rate = rate(all.negative_flips, all.labelled);
    let primary_accuracy = rate(all.primary_hits, all.labelled);
    let candidate_accuracy = rate(all.candidate_hits, all.labelled);
    let overall_test = regression_test(task, all);
    let distances = distances(cmp);
    let slice_results = slice_results(opts, cmp);
    let flagged: Vec<&SliceResult> = slice_results.iter().filter(|s| s.flagged).collect();

    report.figure("rows", "Rows compared", all.rows);
    report.figure("task", "Task", task.name());
    if task == Task::Classification {
        report.figure("flips", "Flips (class changed)", flips);
        report.figure("flip_rate", "Flip rate", flip_rate);
        if noise {
            report.figure(
                "noise_flip_rate",
                "Primary's own flip rate (noise)",
                rate(all.noise_flips, all.rows),
            );
        }
    }
    report.figure("labelled_rows", "Rows with a label", all.labelled);
    match task {
        Task::Classification => {
            report.figure("primary_accuracy", "Primary accuracy", primary_accuracy);
            report.figure(
                "candidate_accuracy",
                "Candidate accuracy",
                candidate_accuracy,
            );
            let diff = paired::paired_difference(
                all.negative_flips,
                all.positive_flips,
                all.labelled,
                CONFIDENCE,
            );
            report.figure(
                "accuracy_change",
                "Accuracy change (candidate - primary)",
                diff.map(|d| d.0),
            );
            report.figure("accuracy_change_low", "  95% CI low", diff.map(|d| d.1));
            report.figure("accuracy_change_high", "  95% CI high", diff.map(|d| d.2));
            report.figure(
                "negative_flips",
                "Negative flips (primary right, candidate wrong)",
                all.negative_flips,
            );
            report.figure(
                "positive_flips",
                "Positive flips (primary wrong, candidate right)",
                all.positive_flips,
            );
            report.figure("negative_flip_rate", "Negative flip rate", negative_rate);
        }
        Task::Regression => {
            report.figure("primary_rmse", "Primary RMSE", rmse(&all.primary_se));
            report.figure("candidate_rmse", "Candidate RMSE", rmse(&all.candidate_se));
        }
    }
    report.figure(
        "p_value",
        "p-value (candidate differs)",
        overall_test.as_ref().map(|r| r.p_value),
    );
    report.figure(
        "psi",
        "PSI of the scores",
        distances.as_ref().map(|d| d.psi),
    );
    report.figure(
        "ks_statistic",
        "KS statistic of the scores",
        distances.as_ref().map(|d| d.ks.statistic),
    );
    report.figure(
        "mean_abs_score_difference",
        "Mean |score difference|",
        (all.scored > 0).then(|| all.abs_difference_sum / all.scored as f64),
    );
    report.figure(
        "max_abs_score_difference",
        "Max |score difference|",
        (all.scored > 0).then_some(all.max_abs_difference),
    );
    report.figure(
        "scores_changed",
        if noise {
            "Scores changed beyond noise"
        } else {
            "Scores changed"
        },
        all.scores_changed,
    );
    if !opts.slice_by.is_empty() {
        report.figure("slices", "Slices", cmp.slices.len());
        report.figure(
            "slices_flagged",
            "Slices where the candidate is worse",
            flagged.len(),
        );
    }

    // Settings, defaults included.
    report.setting("source", "Source", source_setting);
    report.setting("label", "Label column", compared.label.clone());
    report.setting(
        "slice_by",
        "Slice by",
        (!opts.slice_by.is_empty()).then(|| opts.slice_by.join(",")),
    );
    report.setting("alpha", "Significance level", opts.alpha);
    report.setting("confidence", "Confidence intervals", CONFIDENCE);
    report.setting("max_psi", "PSI from which scores moved", opts.max_psi);
    report.setting("baseline_noise", "Baseline noise", noise);
    report.setting("max_flip_rate", "--max-flip-rate", g.max_flip_rate);
    report.setting(
        "max_negative_flip_rate",
        "--max-negative-flip-rate",
        g.max_negative_flip_rate,
    );
    report.setting(
        "max_accuracy_drop",
        "--max-accuracy-drop",
        g.max_accuracy_drop,
    );
    report.setting(
        "max_rmse_increase",
        "--max-rmse-increase",
        g.max_rmse_increase,
    );
    report.setting(
        "fail_on_slice_regression",
        "--fail-on-slice-regression",
        g.fail_on_slice_regression,
    );
    if let Source::Replay(r) = &opts.source {
        report.setting("batch_size", "Batch size", r.batch_size);
        report.setting(
            "threads",
            "Threads",
            crate::runtime::kernels::threads().to_string(),
        );
        report.setting("device", "Device", r.device.clone());
    }
    for (side, roles) in &compared.roles {
        report.setting(
            &format!("{side}_outputs"),
            &format!("{side} outputs"),
            roles.clone(),
        );
    }

    // Gates (fail) and concerns (marginal).
    let mut gates = Section::new(
        "gates",
        "Gates",
        &[
            ("gate", "Gate"),
            ("limit", "Limit"),
            ("value", "Value"),
            ("status", "Status"),
        ],
    );
    let mut violations: Vec<String> = Vec::new();
    let mut gate = |name: &str, limit: f64, value: Option<f64>, what: &str| {
        let held = value.is_some_and(|v| v <= limit);
        if !held {
            violations.push(match value {
                Some(v) => format!(
                    "{name}: {what} {} > {}",
                    crate::report::format_float(v),
                    crate::report::format_float(limit)
                ),
                None => format!("{name}: cannot be checked ({what} needs labelled rows)"),
            });
        }
        gates.push(vec![
            name.into(),
            limit.into(),
            value.into(),
            if held { Status::Ok } else { Status::Error }.into(),
        ]);
    };
    if let Some(limit) = g.max_flip_rate {
        gate(
            "--max-flip-rate",
            limit,
            flip_rate.or(Some(0.0)),
            "flip rate",
        );
    }
    if let Some(limit) = g.max_negative_flip_rate {
        gate(
            "--max-negative-flip-rate",
            limit,
            negative_rate,
            "negative flip rate",
        );
    }
    if let Some(limit) = g.max_accuracy_drop {
        let drop = primary_accuracy.zip(candidate_accuracy).map(|(p, c)| p - c);
        gate("--max-accuracy-drop", limit, drop, "accuracy drop");
    }
    if let Some(limit) = g.max_rmse_increase {
        let increase = rmse(&all.candidate_se)
            .zip(rmse(&all.primary_se))
            .map(|(c, p)| c - p);
        gate("--max-rmse-increase", limit, increase, "RMSE increase");
    }
    if g.fail_on_slice_regression {
        let tested = slice_results.iter().any(|s| s.p_value.is_some());
        let value = tested.then_some(flagged.len() as f64);
        gate(
            "--fail-on-slice-regression",
            0.0,
            value,
            "slices where the candidate is worse",
        );
    }
    let mut concerns: Vec<String> = Vec::new();
    if let Some(r) = overall_test
        .as_ref()
        .filter(|r| r.worse && r.p_value < opts.alpha)
    {
        concerns.push(format!(
            "the candidate is significantly worse overall ({}, p = {})",
            r.test,
            crate::report::format_float(r.p_value)
        ));
    }
    if !flagged.is_empty() && !g.fail_on_slice_regression {
        concerns.push(format!(
            "the candidate is significantly worse in {} slice(s) (Holm-corrected)",
            flagged.len()
        ));
    }
    if let Some(d) = distances.as_ref().filter(|d| d.psi >= opts.max_psi) {
        concerns.push(format!(
            "the score distribution moved (PSI {} >= {})",
            crate::report::format_float(d.psi),
            crate::report::format_float(opts.max_psi)
        ));
    }
    let verdict = if !violations.is_empty() {
        Outcome::Fail
    } else if !concerns.is_empty() {
        Outcome::Marginal
    } else {
        Outcome::Pass
    };
    report.figure("verdict", "Verdict", verdict.as_str());
    let rule = format!(
        "fail: a gate is violated; marginal: no gate is violated, but the candidate is significantly worse (alpha {}) overall or in a slice (Holm-corrected), or its scores moved (PSI >= {}); pass: otherwise",
        crate::report::format_float(opts.alpha),
        crate::report::format_float(opts.max_psi)
    );
    let message = match verdict {
        Outcome::Fail => violations.join("; "),
        Outcome::Marginal => concerns.join("; "),
        Outcome::Pass => {
            if noise && all.noise_flips == 0 && all.noise_max_abs_difference == 0.0 {
                format!("no regression found on {} rows; the primary's noise floor is zero (it answers the same rows identically)", all.rows)
            } else {
                format!("no regression found on {} rows", all.rows)
            }
        }
    };
    report.gate = Gate {
        outcome: verdict,
        rule,
        message,
    };
    if !gates.rows.is_empty() {
        report.sections.push(gates);
    }

    // Slices, worst first.
    if !opts.slice_by.is_empty() {
        report
            .sections
            .push(slice_section(opts, &compared, &slice_results));
    }

    // Tests and distances.
    let mut tests = Section::new(
        "tests",
        "Tests and distances",
        &[
            ("test", "Test"),
            ("statistic", "Statistic"),
            ("p_value", "p-value"),
            ("method", "Method"),
        ],
    );
    if task == Task::Classification && all.labelled > 0 {
        let m = paired::mcnemar(all.negative_flips, all.positive_flips);
        tests.push(vec![
            "mcnemar".into(),
            m.statistic.into(),
            m.p_value.into(),
            if m.exact {
                "exact binomial (b + c < 25)"
            } else {
                "chi-square with continuity correction"
            }
            .into(),
        ]);
    }
    if task == Task::Regression {
        if let Some(t) = paired::paired_t(&all.se_difference) {
            tests.push(vec![
                "paired_t_squared_error".into(),
                t.statistic.into(),
                t.p_value.into(),
                "candidate minus primary squared error, two-sided".into(),
            ]);
        }
    }
    if let Some(d) = &distances {
        let method = match d.ks.method {
            ks::Method::Exact => "exact",
            ks::Method::Asymptotic => "asymptotic",
        };
        tests.push(vec![
            "ks_scores".into(),
            d.ks.statistic.into(),
            d.ks.p_value.into(),
            format!("two-sample, {method}").into(),
        ]);
        tests.push(vec![
            "psi_scores".into(),
            d.psi.into(),
            Cell::Null,
            "Sturges bins over both samples, as Evidently bins".into(),
        ]);
        if !cmp.scores.is_complete() {
            tests.notes.push(format!(
                "KS and PSI on a uniform sample of {} of {} scored rows",
                cmp.scores.len(),
                cmp.scores.seen
            ));
        }
        if let Some(chart) = score_chart(&d.runs.0, &d.runs.1) {
            tests.charts.push(chart);
        }
    }
    report.sections.push(tests);

    // The models: quality with intervals, and replay speed. (In log mode
    // the `model` column names each side's log.)
    let replayed = matches!(opts.source, Source::Replay(_));
    let mut models = Section::new(
        "models",
        "Models",
        &[
            ("side", "Side"),
            ("model", if replayed { "Model" } else { "Log" }),
            ("accuracy", "Accuracy"),
            ("accuracy_low", "95% low"),
            ("accuracy_high", "95% high"),
            ("rmse", "RMSE"),
            ("rmse_low", "95% low"),
            ("rmse_high", "95% high"),
            ("rows_per_second", "Rows/s"),
            ("batch_p50_ms", "Batch p50 ms"),
            ("batch_p99_ms", "Batch p99 ms"),
            ("load_seconds", "Load s"),
        ],
    );
    let paths: [String; 2] = match &opts.source {
        Source::Replay(r) => [
            r.primary.display().to_string(),
            r.candidate.display().to_string(),
        ],
        Source::Logs(l) => [
            l.primary.display().to_string(),
            l.candidate.display().to_string(),
        ],
    };
    for (k, side) in ["primary", "candidate"].iter().enumerate() {
        let (hits, se) = if k == 0 {
            (all.primary_hits, &all.primary_se)
        } else {
            (all.candidate_hits, &all.candidate_se)
        };
        let (acc, lo, hi) = match (task, paired::wilson(hits, all.labelled, CONFIDENCE)) {
            (Task::Classification, Some((lo, hi))) => {
                (rate(hits, all.labelled), Some(lo), Some(hi))
            }
            _ => (None, None, None),
        };
        let (r, rlo, rhi) = if task == Task::Regression {
            let (lo, hi) = rmse_interval(se);
            (rmse(se), lo, hi)
        } else {
            (None, None, None)
        };
        let timing = compared.timings.get(k);
        let summary = timing
            .filter(|t| !t.batch_ms.is_empty())
            .map(|t| latency::summarize(&t.batch_ms));
        models.push(vec![
            (*side).into(),
            paths[k].clone().into(),
            acc.into(),
            lo.into(),
            hi.into(),
            r.into(),
            rlo.into(),
            rhi.into(),
            timing
                .filter(|t| t.seconds > 0.0)
                .map(|t| t.rows as f64 / t.seconds)
                .into(),
            summary.as_ref().map(|s| s.p50).into(),
            summary.as_ref().map(|s| s.p99).into(),
            timing.map(|t| t.load_seconds).into(),
        ]);
    }
    models.drop_empty_columns(&[
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "rmse",
        "rmse_low",
        "rmse_high",
        "rows_per_second",
        "batch_p50_ms",
        "batch_p99_ms",
        "load_seconds",
    ]);
    models.notes.extend(compared.notes.iter().cloned());
    if let Some(seconds) = compared.replay_seconds {
        report.figure(
            "replay_rows_per_second",
            "Replay rows/s (both models, reading, comparing)",
            all.rows as f64 / seconds.max(1e-9),
        );
        models.notes.push("Rows/s and batch times count the model calls alone; the replay figure in the summary counts everything".into());
    }
    report.sections.push(models);

    if let Some(c) = &compared.coverage {
        let mut s = Section::new(
            "coverage",
            "Rows joined",
            &[("what", "What"), ("rows", "Rows")],
        );
        for (what, n) in [
            ("primary log rows", c.primary_rows),
            ("candidate log rows", c.candidate_rows),
            ("matched", c.matched),
            ("only in the primary log", c.only_primary),
            ("only in the candidate log", c.only_candidate),
            (
                "duplicate ids in the primary log (first kept)",
                c.primary_duplicates,
            ),
            (
                "duplicate ids in the candidate log (first kept)",
                c.candidate_duplicates,
            ),
        ] {
            s.push(vec![what.into(), n.into()]);
        }
        if noise {
            s.push(vec![
                "matched rows missing from the noise log".into(),
                c.noise_unmatched.into(),
            ]);
        }
        s.notes.push(format!("joined on {}", c.join));
        report.sections.push(s);
    }
    if noise {
        report.figure(
            "noise_max_abs_score_difference",
            "Primary's own max |score difference| (noise)",
            all.noise_max_abs_difference,
        );
    }
    Ok(report)
}

fn slice_section(opts: &Options, compared: &Compared, results: &[SliceResult]) -> Section {
    let cmp = &compared.comparison;
    let task = cmp.task;
    let mut s = Section::new(
        "slices",
        &format!("Slices by {} (worst first)", opts.slice_by.join(", ")),
        &[
            ("slice", "Slice"),
            ("rows", "Rows"),
            ("flip_rate", "Flip rate"),
            ("labelled", "Labelled"),
            ("primary_accuracy", "Primary acc"),
            ("candidate_accuracy", "Candidate acc"),
            ("negative_flips", "Neg flips"),
            ("positive_flips", "Pos flips"),
            ("primary_rmse", "Primary RMSE"),
            ("candidate_rmse", "Candidate RMSE"),
            ("mean_abs_score_difference", "Mean |diff|"),
            ("p_value", "p"),
            ("p_adjusted", "p (Holm)"),
            ("status", "Status"),
        ],
    );
    let mut order: Vec<&SliceResult> = results.iter().collect();
    // Flagged first, then the slices leaning worse by p-value, then the rest
    // by flips.
    order.sort_by(|a, b| {
        let ta = &cmp.slices[a.index];
        let tb = &cmp.slices[b.index];
        b.flagged
            .cmp(&a.flagged)
            .then(
                a.adjusted
                    .unwrap_or(2.0)
                    .total_cmp(&b.adjusted.unwrap_or(2.0)),
            )
            .then(
                tb.counted_flips(cmp.with_noise)
                    .cmp(&ta.counted_flips(cmp.with_noise)),
            )
            .then(compared.slice_names[a.index].cmp(&compared.slice_names[b.index]))
    });
    let shown = opts
        .top_slices
        .max(order.iter().filter(|r| r.flagged).count());
    let mut chart_names = Vec::new();
    let (mut chart_primary, mut chart_candidate) = (Vec::new(), Vec::new());
    for r in order.iter().take(shown) {
        let t = &cmp.slices[r.index];
        let classification = task == Task::Classification;
        let (pa, ca) = (
            rate(t.primary_hits, t.labelled),
            rate(t.candidate_hits, t.labelled),
        );
        s.push(vec![
            compared.slice_names[r.index].clone().into(),
            t.rows.into(),
            if classification {
                rate(t.counted_flips(cmp.with_noise), t.rows)
            } else {
                None
            }
            .into(),
            t.labelled.into(),
            if classification { pa } else { None }.into(),
            if classification { ca } else { None }.into(),
            if classification {
                Some(t.negative_flips)
            } else {
                None
            }
            .into(),
            if classification {
                Some(t.positive_flips)
            } else {
                None
            }
            .into(),
            if classification {
                None
            } else {
                rmse(&t.primary_se)
            }
            .into(),
            if classification {
                None
            } else {
                rmse(&t.candidate_se)
            }
            .into(),
            (t.scored > 0)
                .then(|| t.abs_difference_sum / t.scored as f64)
                .into(),
            r.p_value.into(),
            r.adjusted.into(),
            if r.flagged { Status::Drift } else { Status::Ok }.into(),
        ]);
        if chart_names.len() < 30 {
            chart_names.push(compared.slice_names[r.index].clone());
            if classification {
                chart_primary.push(pa.unwrap_or(f64::NAN));
                chart_candidate.push(ca.unwrap_or(f64::NAN));
            } else {
                chart_primary.push(rmse(&t.primary_se).unwrap_or(f64::NAN));
                chart_candidate.push(rmse(&t.candidate_se).unwrap_or(f64::NAN));
            }
        }
    }
    s.drop_empty_columns(&[
        "flip_rate",
        "primary_accuracy",
        "candidate_accuracy",
        "negative_flips",
        "positive_flips",
        "primary_rmse",
        "candidate_rmse",
        "mean_abs_score_difference",
        "p_value",
        "p_adjusted",
    ]);
    if order.len() > shown {
        s.notes.push(format!(
            "{} more slices, none flagged (--top-slices to list more)",
            order.len() - shown
        ));
    }
    s.notes.push(format!(
        "a slice is flagged when the candidate is worse and the Holm-corrected p-value of {} is below {}",
        if task == Task::Classification { "McNemar's test" } else { "the paired t-test on squared errors" },
        crate::report::format_float(opts.alpha)
    ));
    let metric = if task == Task::Classification {
        "accuracy"
    } else {
        "RMSE"
    };
    if !chart_names.is_empty() {
        s.charts.push(Chart::Histogram {
            title: format!("{metric} per slice (worst first)"),
            bins: chart_names,
            series: vec![
                Series {
                    name: format!("primary {metric}"),
                    values: chart_primary,
                },
                Series {
                    name: format!("candidate {metric}"),
                    values: chart_candidate,
                },
            ],
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_slices_from_dictionary_codes_are_those_read_from_a_frame() {
        use crate::data::{write_parquet, OutColumn};
        // Two row groups' codes of a text column, and the same rows in a
        // frame: the same slice numbers and class codes, in the same order.
        let texts = ["b", "a", "", "b", "c", "a"];
        let rows = [
            Some("b"),
            None,
            Some("a"),
            Some("c"),
            Some("b"),
            None,
            Some("a"),
        ];
        let groups = [
            GroupCodes {
                entries: Entries::Text(texts[..3].iter().map(|t| t.to_string()).collect()),
                indices: vec![0, NULL, 1],
            },
            GroupCodes {
                entries: Entries::Text(texts[3..].iter().map(|t| t.to_string()).collect()),
                indices: vec![1, 0, NULL, 2],
            },
        ];
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("rows.parquet");
        let column = rows.iter().map(|r| r.map(str::to_string)).collect();
        write_parquet(&path, vec![("key".to_string(), OutColumn::Text(column))]).expect("written");
        let frame = Frame::read(&path, None).expect("read");
        let key = ["key".to_string()];
        let (mut from_codes, mut from_frame) = (SliceKeys::default(), SliceKeys::default());
        assert_eq!(
            Some(from_codes.read_codes(&groups, Vec::new())),
            from_frame.read(&frame, &key).expect("slices")
        );
        assert_eq!(from_codes.names, from_frame.names);
        assert_eq!(from_codes.names, ["b", "(null)", "a", "c"]);
        let mut reader = LabelReader::new(Some("key".into()));
        let (mut a, mut b) = (ClassCodes::default(), ClassCodes::default());
        let classes =
            |mut labels: LabelValues| match labels.for_task(Task::Classification, 0, 7, &path) {
                Ok(Labels::Classes(c)) => (0..7).map(|i| c.get(i)).collect::<Vec<_>>(),
                _ => panic!("classes"),
            };
        assert_eq!(
            classes(reader.read_codes(&groups, &mut a, Vec::new())),
            classes(reader.read(&frame, &mut b).expect("labels"))
        );
    }

    #[test]
    fn integer_labels_read_as_classes_and_as_numbers_for_a_regression() {
        use crate::data::{write_parquet, OutColumn};
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("labels.parquet");
        let column = ("label".to_string(), OutColumn::I64(vec![3, -1, 7]));
        write_parquet(&path, vec![column]).expect("written");
        let frame = Frame::read(&path, None).expect("read");
        let mut reader = LabelReader::new(Some("label".into()));
        let mut labels = reader
            .read(&frame, &mut ClassCodes::default())
            .expect("labels");
        match labels.for_task(Task::Classification, 1, 2, &path) {
            Ok(Labels::Classes(c)) => assert_eq!([c.get(0), c.get(1)], [Some(-1), Some(7)]),
            _ => panic!("classes"),
        }
        match labels.for_task(Task::Regression, 0, 3, &path) {
            Ok(Labels::Values(v)) => assert_eq!(v, &[3.0, -1.0, 7.0]),
            _ => panic!("numbers"),
        }
    }

    #[test]
    fn the_score_chart_counts_every_score_into_equal_width_bins() {
        // Scores repeat (as a log's replayed records do) and spread
        // unevenly; the two samples have different ranges.
        let primary: Vec<f64> = (0..5000).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        let candidate: Vec<f64> = (0..3000)
            .map(|i| 0.2 + ((i * 17) % 91) as f64 / 90.0)
            .collect();
        // The bins span both: the primary's lowest, the candidate's highest.
        let (lo, hi) = (0.0, 1.2);
        let width = (hi - lo) / 20.0;
        let expected = |values: &[f64]| {
            let mut bins = [0f64; 20];
            for v in values {
                bins[(((v - lo) / width) as usize).min(19)] += 1.0;
            }
            bins.map(|b| b / values.len() as f64).to_vec()
        };
        let chart = score_chart(
            &Runs::from_values(primary.clone()),
            &Runs::from_values(candidate.clone()),
        );
        let Some(Chart::Histogram { bins, series, .. }) = chart else {
            panic!("no histogram")
        };
        assert_eq!(bins.len(), 20);
        assert_eq!(bins[0], crate::report::format_float(lo));
        assert_eq!(series[0].values, expected(&primary));
        assert_eq!(series[1].values, expected(&candidate));
    }
}
