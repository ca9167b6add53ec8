//! Log mode: two prediction logs a service wrote in shadow mode (the live
//! answers and the shadow answers), joined on the request id. Rows on one
//! side only, and ids logged twice, are counted and reported; the first
//! row of a duplicated id is the one compared.
//!
//! Only the columns compared are read, but the join holds them in memory
//! (about 350 bytes a row with string ids); replay mode is the one that
//! streams.

use std::collections::HashMap;
use std::path::Path;

use super::compare::{Answers, Comparison, Paired, Task};
use super::outputs::ClassCodes;
use super::{Compared, Coverage, LabelReader, LogOptions, Options, SliceKeys};
use crate::data::{Frame, KeyColumn, Table, Values};
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

fn is_int_key(frame: &Frame, column: &str) -> Result<bool> {
    Ok(matches!(frame.key_column(column)?, KeyColumn::Int(_)))
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
) -> Result<(Vec<i64>, Vec<f64>, usize)> {
    let values = frame.values(prediction)?;
    let mut missing = 0usize;
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
                .map(|c| {
                    c.unwrap_or_else(|| {
                        missing += 1;
                        missing_class
                    })
                })
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
            missing = numbers.iter().filter(|x| x.is_nan()).count();
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
    Ok((classes, scores, missing))
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

/// A log's column names, read before its rows so that only the columns the
/// comparison uses are read (a prediction log carries every feature too).
struct Schema {
    path: std::path::PathBuf,
    columns: Vec<String>,
}

impl Schema {
    fn open(path: &Path) -> Result<Schema> {
        let table = Table::open(path)?;
        Ok(Schema {
            path: path.to_path_buf(),
            columns: table.columns.into_iter().map(|(name, _)| name).collect(),
        })
    }

    fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// The rows of `wanted` (each once), in memory.
    fn read(&self, wanted: &[&String]) -> Result<Frame> {
        let mut columns: Vec<String> = Vec::new();
        for c in wanted {
            if !columns.contains(c) {
                columns.push((*c).clone());
            }
        }
        Frame::read(&self.path, Some(&columns))
    }
}

pub(super) fn run(opts: &Options, logs: &LogOptions) -> Result<Compared> {
    let primary = Schema::open(&logs.primary)?;
    let candidate = Schema::open(&logs.candidate)?;
    let noise = logs.noise.as_deref().map(Schema::open).transpose()?;
    for schema in [&primary, &candidate].into_iter().chain(noise.as_ref()) {
        if !schema.has(&logs.prediction) {
            return Err(Error::input(
                &schema.path,
                format!(
                    "no prediction column '{}' (choose it with --prediction)",
                    logs.prediction
                ),
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
            for schema in [&primary, &candidate] {
                if !schema.has(s) {
                    return Err(Error::input(&schema.path, format!("no score column '{s}'")));
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
            for schema in [&primary, &candidate].into_iter().chain(noise.as_ref()) {
                if !schema.has(j) {
                    return Err(Error::input(&schema.path, format!("no join column '{j}'")));
                }
            }
            Some(j.clone())
        }
        None if primary.has("request_id")
            && candidate.has("request_id")
            && noise.as_ref().is_none_or(|f| f.has("request_id")) =>
        {
            Some("request_id".to_string())
        }
        None => None,
    };

    // Only the columns compared are read.
    let mut common: Vec<&String> = vec![&logs.prediction];
    common.extend(join.as_ref());
    let mut wanted = common.clone();
    wanted.extend(score.as_ref());
    let mut primary_wanted = wanted.clone();
    primary_wanted.extend(label.as_ref());
    primary_wanted.extend(opts.slice_by.iter());
    let primary = primary.read(&primary_wanted)?;
    let candidate = candidate.read(&wanted)?;
    let noise = match &noise {
        Some(schema) => {
            let mut noise_wanted = common.clone();
            noise_wanted.extend(score.as_ref().filter(|s| schema.has(s)));
            Some(schema.read(&noise_wanted)?)
        }
        None => None,
    };
    for (frame, what) in [(&primary, "primary"), (&candidate, "candidate")]
        .into_iter()
        .chain(noise.iter().map(|f| (f, "noise")))
    {
        if frame.height() == 0 {
            return Err(Error::input(
                frame.path(),
                format!("the {what} log has no rows: nothing to compare"),
            ));
        }
    }
    let mut coverage = Coverage {
        primary_rows: primary.height() as u64,
        candidate_rows: candidate.height() as u64,
        ..Coverage::default()
    };
    let mut warnings = Vec::new();
    // (primary row, candidate row, noise row) of every compared pair.
    let (rows_p, rows_c, rows_n): (Vec<usize>, Vec<usize>, Option<Vec<usize>>) = match &join {
        Some(j) => {
            let mut frames = vec![&primary, &candidate];
            frames.extend(noise.as_ref());
            let as_text = {
                let mut ints = Vec::new();
                for f in &frames {
                    ints.push(is_int_key(f, j)?);
                }
                !ints.iter().all(|&b| b)
            };
            let pk = keys(&primary, j, as_text)?;
            let ck = keys(&candidate, j, as_text)?;
            let nk = noise.as_ref().map(|f| keys(f, j, as_text)).transpose()?;
            let (p_index, p_dup, p_null) = index(&pk);
            let (c_index, c_dup, c_null) = index(&ck);
            let n_index = nk.as_ref().map(|k| index(k).0);
            coverage.primary_duplicates = p_dup;
            coverage.candidate_duplicates = c_dup;
            if p_null + c_null > 0 {
                warnings.push(format!(
                    "{} rows have no '{j}' and cannot be joined (primary {p_null}, candidate {c_null})",
                    p_null + c_null
                ));
            }
            let mut pairs: Vec<(usize, usize)> = p_index
                .iter()
                .filter_map(|(k, &p)| c_index.get(k).map(|&c| (p, c)))
                .collect();
            pairs.sort_unstable();
            coverage.matched = pairs.len() as u64;
            coverage.only_primary = p_index.len() as u64 - coverage.matched + p_null;
            coverage.only_candidate = c_index.len() as u64 - coverage.matched + c_null;
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
            coverage.join = format!("column '{j}' (the first row of a duplicated id is compared)");
            (
                kept.iter().map(|x| x.0).collect(),
                kept.iter().map(|x| x.1).collect(),
                n_index.map(|_| noise_rows),
            )
        }
        None => {
            let n = primary.height();
            let same = candidate.height() == n && noise.as_ref().is_none_or(|f| f.height() == n);
            if !same {
                return Err(Error::usage(format!(
                    "the logs have no common 'request_id' column and different row counts ({} and {}): name the join column with --join",
                    primary.height(),
                    candidate.height()
                )));
            }
            coverage.matched = n as u64;
            coverage.join = "row order (no --join and no 'request_id' in both logs)".into();
            warnings.push(
                "the logs were paired by row order: give --join ID_COLUMN when they have one"
                    .into(),
            );
            (
                (0..n).collect(),
                (0..n).collect(),
                noise.as_ref().map(|_| (0..n).collect()),
            )
        }
    };
    if rows_p.is_empty() {
        return Err(Error::input(
            &logs.candidate,
            format!(
                "no request of the primary log is in the candidate log (joined on {})",
                coverage.join
            ),
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

    let task = opts.task.unwrap_or_else(|| {
        task_of(
            &primary
                .values(&logs.prediction)
                .unwrap_or(Values::Int(Vec::new())),
        )
    });
    let mut codes = ClassCodes::default();
    let score_ref = score.as_deref();
    let (pc, ps, p_missing) = answers(
        &primary,
        &logs.prediction,
        score_ref,
        task,
        &mut codes,
        i64::MAX,
    )?;
    let (cc, cs, c_missing) = answers(
        &candidate,
        &logs.prediction,
        score_ref,
        task,
        &mut codes,
        i64::MAX - 1,
    )?;
    let noise_answers = match &noise {
        Some(f) => {
            let s = score_ref.filter(|s| f.has(s));
            Some(answers(
                f,
                &logs.prediction,
                s,
                task,
                &mut codes,
                i64::MAX - 2,
            )?)
        }
        None => None,
    };
    if p_missing + c_missing > 0 {
        warnings.push(format!(
            "{} compared rows have no prediction (primary {p_missing}, candidate {c_missing}); they count as disagreeing",
            p_missing + c_missing
        ));
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
        (Some((nc, ns, _)), Some(rows)) => Some((pick_classes(nc, rows), pick(ns, rows))),
        _ => None,
    };
    let mut label_reader = LabelReader::new(label.clone());
    let label_values = label_reader.read(&primary, &mut codes)?;
    let mut slice_keys = SliceKeys::default();
    let slices = slice_keys.read(&primary, &opts.slice_by)?;
    let slices = slices.map(|s| pick(&s, &rows_p));
    // The labels in compared order.
    let picked_labels = super::LabelValues {
        column: label_values.column.clone(),
        classes: label_values.classes.as_ref().map(|v| pick(v, &rows_p)),
        numbers: label_values.numbers.as_ref().map(|v| pick(v, &rows_p)),
    };
    let n = rows_p.len();
    let mut comparison = Comparison::new(task, noise_picked.is_some());
    comparison.add(&Paired {
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
    let mut compared = Compared::new(comparison, slice_keys.names, codes);
    compared.coverage = Some(coverage);
    compared.label = label;
    compared.warnings = warnings;
    compared.roles = vec![(
        "prediction".into(),
        format!(
            "class from '{}'{}",
            logs.prediction,
            score
                .as_ref()
                .map(|s| format!(", score from '{s}'"))
                .unwrap_or_default()
        ),
    )];
    if task == Task::Regression {
        compared.roles = vec![(
            "prediction".into(),
            format!("value from '{}'", logs.prediction),
        )];
    }
    Ok(compared)
}
