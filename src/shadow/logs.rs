//! Log mode: two prediction logs a service wrote in shadow mode (the live
//! answers and the shadow answers), joined on the request id. Rows on one
//! side only, and ids logged twice, are counted and reported; the first
//! row of a duplicated id is the one compared.
//!
//! Only the columns compared are read. The join holds them in memory
//! (about 350 bytes a row with string ids), so logs longer than
//! `partition_rows` together are joined in partitions of the ids (a hash of
//! each), each log read range by range once per partition: memory follows
//! the partition, not the logs.

use std::collections::HashMap;
use std::path::Path;

use super::compare::{Answers, Comparison, Paired, Task};
use super::outputs::ClassCodes;
use super::{Compared, Coverage, LabelReader, LogOptions, Options, SliceKeys};
use crate::data::{Frame, KeyColumn, Table, ValueType, Values};
use crate::error::{Error, Result};

/// A join key, typed as both logs agree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Text(String),
}

fn keys(frame: &Frame, column: &str, as_text: bool) -> Result<Vec<Option<Key>>> {
    Ok(match frame.key_column(column)? {
        KeyColumn::Int(v) if !as_text => v.into_iter().map(|k| k.map(Key::Int)).collect(),
        KeyColumn::Int(v) => v
            .into_iter()
            .map(|k| k.map(|k| Key::Text(k.to_string())))
            .collect(),
        KeyColumn::Text(v) => v.into_iter().map(|k| k.map(Key::Text)).collect(),
    })
}

/// The task a prediction column implies: numbers with a fractional part
/// are a regression, anything else classes.
fn task_of(values: &Values) -> Task {
    match values {
        Values::Float(v) if v.iter().flatten().any(|x| x.fract() != 0.0) => Task::Regression,
        _ => Task::Classification,
    }
}

/// One log's answers: classes (classification) and scores.
/// `missing_class` stands for a missing prediction: a class of its own,
/// different for each log, so that it agrees with nothing (not even a
/// prediction missing from the other log).
fn answers(
    frame: &Frame,
    prediction: &str,
    score: Option<&str>,
    task: Task,
    codes: &mut ClassCodes,
    missing_class: i64,
) -> Result<(Vec<i64>, Vec<f64>)> {
    let values = frame.values(prediction)?;
    let (classes, mut scores): (Vec<i64>, Vec<f64>) = match task {
        Task::Classification => {
            let classes: Vec<Option<i64>> = match &values {
                Values::Int(v) => v.clone(),
                Values::Bool(v) => v.iter().map(|x| x.map(i64::from)).collect(),
                Values::Text(v) => v
                    .iter()
                    .map(|x| x.as_deref().map(|t| codes.code(t)))
                    .collect(),
                Values::Float(v) => {
                    if let Some(x) = v
                        .iter()
                        .flatten()
                        .find(|x| ClassCodes::number(**x).is_none())
                    {
                        return Err(Error::input(
                            frame.path(),
                            format!("prediction column '{prediction}' holds {x}, not a class; for numbers say --task regression"),
                        ));
                    }
                    v.iter().map(|x| x.and_then(ClassCodes::number)).collect()
                }
            };
            let classes = classes
                .into_iter()
                .map(|c| c.unwrap_or(missing_class))
                .collect::<Vec<_>>();
            let n = classes.len();
            (classes, vec![f64::NAN; n])
        }
        Task::Regression => {
            let numbers: Vec<f64> = match &values {
                Values::Int(v) => v.iter().map(|x| x.map_or(f64::NAN, |x| x as f64)).collect(),
                Values::Float(v) => v.iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
                _ => {
                    return Err(Error::input(
                        frame.path(),
                        format!("prediction column '{prediction}' is not numeric; a regression needs numbers"),
                    ))
                }
            };
            (Vec::new(), numbers)
        }
    };
    if let (Task::Classification, Some(score)) = (task, score) {
        scores = match frame.values(score)? {
            Values::Float(v) => v.iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
            Values::Int(v) => v.iter().map(|x| x.map_or(f64::NAN, |x| x as f64)).collect(),
            _ => {
                return Err(Error::input(
                    frame.path(),
                    format!("score column '{score}' is not numeric"),
                ))
            }
        };
    }
    Ok((classes, scores))
}

/// Row index of each key's first occurrence, and how many rows repeated a
/// key seen before (rows without a key are left out and counted there too).
fn index(keys: &[Option<Key>]) -> (HashMap<&Key, usize>, u64, u64) {
    let mut map = HashMap::with_capacity(keys.len());
    let (mut duplicates, mut null_keys) = (0, 0);
    for (i, k) in keys.iter().enumerate() {
        match k {
            None => null_keys += 1,
            Some(k) => {
                if map.contains_key(k) {
                    duplicates += 1;
                } else {
                    map.insert(k, i);
                }
            }
        }
    }
    (map, duplicates, null_keys)
}

fn pick<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&r| values[r]).collect()
}

/// A log, opened (its schema read, its rows not yet), so that only the
/// columns the comparison uses are read: a prediction log carries every
/// feature too.
struct Log {
    path: std::path::PathBuf,
    table: Table,
    rows: usize,
}

impl Log {
    fn open(path: &Path) -> Result<Log> {
        let table = Table::open(path)?;
        let rows = table.row_count()?;
        Ok(Log {
            path: path.to_path_buf(),
            table,
            rows,
        })
    }

    fn has(&self, column: &str) -> bool {
        self.table.value_type(column).is_some()
    }

    fn int_column(&self, column: &str) -> bool {
        self.table.value_type(column) == Some(ValueType::Integer)
    }

    /// Every row of `columns`, in memory (a small log opened in memory is
    /// not read again).
    fn read(&self, columns: &[String]) -> Result<Frame> {
        self.table.read_frame(columns, 0, self.rows)
    }

    /// The rows of `columns` whose key falls in partition `part` of
    /// `parts`, read range by range: memory holds one range and the
    /// partition, never the whole log.
    fn read_partition(&self, columns: &[String], key: &KeySpec, part: u64) -> Result<Frame> {
        let mut kept = Vec::new();
        for (offset, len) in self.table.chunks(1 << 20)? {
            let frame = self.table.read_frame(columns, offset, len)?;
            let mask: Vec<bool> = keys(&frame, &key.column, key.as_text)?
                .iter()
                .map(|k| key.partition(k.as_ref()) == part)
                .collect();
            kept.push(frame.filter(&mask)?);
        }
        Frame::concat(&self.path, kept)
    }
}

/// How rows are joined when there is a key: the column, whether keys
/// compare as text (when the logs do not all hold integers), and how many
/// partitions the logs are joined in.
struct KeySpec {
    column: String,
    as_text: bool,
    parts: u64,
}

impl KeySpec {
    /// A key's partition (rows without a key go to the first, where they
    /// are counted once).
    fn partition(&self, key: Option<&Key>) -> u64 {
        use std::hash::BuildHasher;
        match key {
            Some(k) if self.parts > 1 => {
                foldhash::fast::FixedState::with_seed(0x5eed).hash_one(k) % self.parts
            }
            _ => 0,
        }
    }
}

/// What the partitions add up.
struct Totals {
    comparison: Comparison,
    codes: ClassCodes,
    slice_keys: SliceKeys,
    coverage: Coverage,
    primary_missing: usize,
    candidate_missing: usize,
    primary_null_keys: u64,
    candidate_null_keys: u64,
}

pub(super) fn run(opts: &Options, logs: &LogOptions) -> Result<Compared> {
    let primary = Log::open(&logs.primary)?;
    let candidate = Log::open(&logs.candidate)?;
    let noise = logs.noise.as_deref().map(Log::open).transpose()?;
    for (log, what) in [(&primary, "primary"), (&candidate, "candidate")]
        .into_iter()
        .chain(noise.iter().map(|l| (l, "noise")))
    {
        if !log.has(&logs.prediction) {
            return Err(Error::input(
                &log.path,
                format!(
                    "no prediction column '{}' (choose it with --prediction)",
                    logs.prediction
                ),
            ));
        }
        if log.rows == 0 {
            return Err(Error::input(
                &log.path,
                format!("the {what} log has no rows: nothing to compare"),
            ));
        }
    }
    let label = LabelReader::choose(opts, |c| primary.has(c), &logs.primary)?;
    for s in &opts.slice_by {
        if !primary.has(s) {
            return Err(Error::input(
                &logs.primary,
                format!("no column '{s}' to slice by"),
            ));
        }
    }
    let score = match &logs.score {
        Some(s) => {
            for log in [&primary, &candidate] {
                if !log.has(s) {
                    return Err(Error::input(&log.path, format!("no score column '{s}'")));
                }
            }
            Some(s.clone())
        }
        None => ["confidence", "score"]
            .into_iter()
            .find(|c| primary.has(c) && candidate.has(c))
            .map(str::to_string),
    };

    // Which rows pair up.
    let join = match &logs.join {
        Some(j) => {
            for log in [&primary, &candidate].into_iter().chain(noise.as_ref()) {
                if !log.has(j) {
                    return Err(Error::input(&log.path, format!("no join column '{j}'")));
                }
            }
            Some(j.clone())
        }
        None if primary.has("request_id")
            && candidate.has("request_id")
            && noise.as_ref().is_none_or(|l| l.has("request_id")) =>
        {
            Some("request_id".to_string())
        }
        None => None,
    };
    let key = join.as_ref().map(|j| {
        let mut logs_here = vec![&primary, &candidate];
        logs_here.extend(noise.as_ref());
        let rows: usize = logs_here.iter().map(|l| l.rows).sum();
        KeySpec {
            column: j.clone(),
            as_text: !logs_here.iter().all(|l| l.int_column(j)),
            parts: rows.div_ceil(logs.partition_rows.max(1)).max(1) as u64,
        }
    });

    // Only the columns compared are read.
    let mut common: Vec<String> = vec![logs.prediction.clone()];
    common.extend(join.iter().cloned());
    let mut wanted = common.clone();
    wanted.extend(score.iter().cloned());
    let mut primary_wanted = wanted.clone();
    primary_wanted.extend(label.iter().cloned());
    primary_wanted.extend(opts.slice_by.iter().cloned());
    let noise_wanted = noise.as_ref().map(|l| {
        let mut w = common.clone();
        w.extend(score.iter().filter(|s| l.has(s)).cloned());
        w
    });
    for w in [&mut primary_wanted, &mut wanted] {
        let mut seen = Vec::new();
        w.retain(|c| {
            let new = !seen.contains(c);
            seen.push(c.clone());
            new
        });
    }

    let task = match opts.task {
        Some(t) => t,
        None => prediction_task(&primary, &logs.prediction)?,
    };
    let mut totals = Totals {
        comparison: Comparison::new(task, noise.is_some()),
        codes: ClassCodes::default(),
        slice_keys: SliceKeys::default(),
        coverage: Coverage {
            primary_rows: primary.rows as u64,
            candidate_rows: candidate.rows as u64,
            ..Coverage::default()
        },
        primary_missing: 0,
        candidate_missing: 0,
        primary_null_keys: 0,
        candidate_null_keys: 0,
    };
    let parts = key.as_ref().map_or(1, |k| k.parts);
    for part in 0..parts {
        let read = |log: &Log, columns: &[String]| match (&key, parts) {
            (Some(k), p) if p > 1 => log.read_partition(columns, k, part),
            _ => log.read(columns),
        };
        let p_frame = read(&primary, &primary_wanted)?;
        let c_frame = read(&candidate, &wanted)?;
        let n_frame = match (&noise, &noise_wanted) {
            (Some(l), Some(w)) => Some(read(l, w)?),
            _ => None,
        };
        compare_part(
            opts,
            logs,
            &p_frame,
            &c_frame,
            n_frame.as_ref(),
            key.as_ref(),
            score.as_deref(),
            label.as_ref(),
            &mut totals,
        )?;
    }

    let mut coverage = totals.coverage;
    let mut warnings = Vec::new();
    coverage.join = match &key {
        Some(k) if k.parts > 1 => format!(
            "column '{}' (the first row of a duplicated id is compared), in {} partitions of the ids",
            k.column, k.parts
        ),
        Some(k) => format!(
            "column '{}' (the first row of a duplicated id is compared)",
            k.column
        ),
        None => {
            warnings.push(
                "the logs were paired by row order: give --join ID_COLUMN when they have one"
                    .to_string(),
            );
            "row order (no --join and no 'request_id' in both logs)".into()
        }
    };
    if totals.comparison.overall.rows == 0 {
        return Err(Error::input(
            &logs.candidate,
            format!(
                "no request of the primary log is in the candidate log (joined on {})",
                coverage.join
            ),
        ));
    }
    let null_keys = totals.primary_null_keys + totals.candidate_null_keys;
    if let (Some(k), true) = (&key, null_keys > 0) {
        warnings.push(format!(
            "{null_keys} rows have no '{}' and cannot be joined (primary {}, candidate {})",
            k.column, totals.primary_null_keys, totals.candidate_null_keys
        ));
    }
    let unmatched = coverage.only_primary + coverage.only_candidate;
    if unmatched > 0 {
        warnings.push(format!(
            "{unmatched} rows are in one log only ({} primary, {} candidate) and are not compared",
            coverage.only_primary, coverage.only_candidate
        ));
    }
    let duplicates = coverage.primary_duplicates + coverage.candidate_duplicates;
    if duplicates > 0 {
        warnings.push(format!(
            "{duplicates} rows repeat a request id seen before ({} primary, {} candidate); the first row of each id is compared",
            coverage.primary_duplicates, coverage.candidate_duplicates
        ));
    }
    let missing = totals.primary_missing + totals.candidate_missing;
    if missing > 0 {
        warnings.push(format!(
            "{missing} compared rows have no prediction (primary {}, candidate {}); they count as disagreeing",
            totals.primary_missing, totals.candidate_missing
        ));
    }
    let mut compared = Compared::new(totals.comparison, totals.slice_keys.names, totals.codes);
    compared.coverage = Some(coverage);
    compared.label = label;
    compared.warnings = warnings;
    compared.roles = vec![(
        "prediction".into(),
        match task {
            Task::Regression => format!("value from '{}'", logs.prediction),
            Task::Classification => format!(
                "class from '{}'{}",
                logs.prediction,
                score
                    .as_ref()
                    .map(|s| format!(", score from '{s}'"))
                    .unwrap_or_default()
            ),
        },
    )];
    Ok(compared)
}

/// The task the primary log's predictions imply, read range by range.
fn prediction_task(log: &Log, prediction: &str) -> Result<Task> {
    let column = [prediction.to_string()];
    for (offset, len) in log.table.chunks(1 << 20)? {
        let frame = log.table.read_frame(&column, offset, len)?;
        if task_of(&frame.values(prediction)?) == Task::Regression {
            return Ok(Task::Regression);
        }
    }
    Ok(Task::Classification)
}

/// Joins one partition of the logs (all of them when there is one) and
/// adds its pairs to the totals.
#[allow(clippy::too_many_arguments)]
fn compare_part(
    opts: &Options,
    logs: &LogOptions,
    primary: &Frame,
    candidate: &Frame,
    noise: Option<&Frame>,
    key: Option<&KeySpec>,
    score: Option<&str>,
    label: Option<&String>,
    totals: &mut Totals,
) -> Result<()> {
    let coverage = &mut totals.coverage;
    // (primary row, candidate row, noise row) of every compared pair.
    let (rows_p, rows_c, rows_n): (Vec<usize>, Vec<usize>, Option<Vec<usize>>) = match key {
        Some(k) => {
            let pk = keys(primary, &k.column, k.as_text)?;
            let ck = keys(candidate, &k.column, k.as_text)?;
            let nk = noise.map(|f| keys(f, &k.column, k.as_text)).transpose()?;
            let (p_index, p_dup, p_null) = index(&pk);
            let (c_index, c_dup, c_null) = index(&ck);
            let n_index = nk.as_ref().map(|k| index(k).0);
            coverage.primary_duplicates += p_dup;
            coverage.candidate_duplicates += c_dup;
            totals.primary_null_keys += p_null;
            totals.candidate_null_keys += c_null;
            let mut pairs: Vec<(usize, usize)> = p_index
                .iter()
                .filter_map(|(k, &p)| c_index.get(k).map(|&c| (p, c)))
                .collect();
            pairs.sort_unstable();
            let matched = pairs.len() as u64;
            coverage.matched += matched;
            coverage.only_primary += p_index.len() as u64 - matched + p_null;
            coverage.only_candidate += c_index.len() as u64 - matched + c_null;
            let mut kept = Vec::with_capacity(pairs.len());
            let mut noise_rows = Vec::new();
            for (p, c) in pairs {
                match &n_index {
                    Some(ni) => match ni.get(pk[p].as_ref().expect("joined rows have keys")) {
                        Some(&n) => {
                            kept.push((p, c));
                            noise_rows.push(n);
                        }
                        None => coverage.noise_unmatched += 1,
                    },
                    None => kept.push((p, c)),
                }
            }
            (
                kept.iter().map(|x| x.0).collect(),
                kept.iter().map(|x| x.1).collect(),
                n_index.map(|_| noise_rows),
            )
        }
        None => {
            let n = primary.height();
            let same = candidate.height() == n && noise.is_none_or(|f| f.height() == n);
            if !same {
                return Err(Error::usage(format!(
                    "the logs have no common 'request_id' column and different row counts ({} and {}): name the join column with --join",
                    primary.height(),
                    candidate.height()
                )));
            }
            coverage.matched += n as u64;
            (
                (0..n).collect(),
                (0..n).collect(),
                noise.map(|_| (0..n).collect()),
            )
        }
    };
    if rows_p.is_empty() {
        return Ok(());
    }
    let task = totals.comparison.task;
    let codes = &mut totals.codes;
    let (pc, ps) = answers(primary, &logs.prediction, score, task, codes, i64::MAX)?;
    let (cc, cs) = answers(
        candidate,
        &logs.prediction,
        score,
        task,
        codes,
        i64::MAX - 1,
    )?;
    let noise_answers = match noise {
        Some(f) => {
            let s = score.filter(|s| f.has(s));
            Some(answers(f, &logs.prediction, s, task, codes, i64::MAX - 2)?)
        }
        None => None,
    };
    // Missing predictions among the compared rows only.
    let missing_in = |classes: &[i64], rows: &[usize], code: i64| {
        rows.iter()
            .filter(|&&r| classes.get(r) == Some(&code))
            .count()
    };
    if task == Task::Classification {
        totals.primary_missing += missing_in(&pc, &rows_p, i64::MAX);
        totals.candidate_missing += missing_in(&cc, &rows_c, i64::MAX - 1);
    } else {
        totals.primary_missing += rows_p.iter().filter(|&&r| ps[r].is_nan()).count();
        totals.candidate_missing += rows_c.iter().filter(|&&r| cs[r].is_nan()).count();
    }
    let pick_classes = |v: &[i64], rows: &[usize]| {
        if v.is_empty() {
            Vec::new()
        } else {
            pick(v, rows)
        }
    };
    let (pc, ps) = (pick_classes(&pc, &rows_p), pick(&ps, &rows_p));
    let (cc, cs) = (pick_classes(&cc, &rows_c), pick(&cs, &rows_c));
    let noise_picked = match (&noise_answers, &rows_n) {
        (Some((nc, ns)), Some(rows)) => Some((pick_classes(nc, rows), pick(ns, rows))),
        _ => None,
    };
    let mut label_reader = LabelReader::new(label.cloned());
    let label_values = label_reader.read(primary, codes)?;
    let slices = totals.slice_keys.read(primary, &opts.slice_by)?;
    let slices = slices.map(|s| pick(&s, &rows_p));
    // The labels in compared order.
    let mut picked_labels = super::LabelValues {
        column: label_values.column.clone(),
        classes: label_values.classes.as_ref().map(|v| pick(v, &rows_p)),
        missing: label_values.missing,
        numbers: label_values.numbers.as_ref().map(|v| pick(v, &rows_p)),
        integers: label_values.integers,
    };
    let n = rows_p.len();
    totals.comparison.add(&Paired {
        primary: Answers {
            classes: &pc,
            scores: &ps,
        },
        candidate: Answers {
            classes: &cc,
            scores: &cs,
        },
        noise: noise_picked.as_ref().map(|(c, s)| Answers {
            classes: c,
            scores: s,
        }),
        labels: picked_labels.for_task(task, 0, n, &logs.primary)?,
        slices: slices.as_deref(),
    });
    Ok(())
}
