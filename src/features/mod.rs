//! `mlctl features`: feature views defined once in mlctl.toml, computed by
//! one engine (`offline`) for both paths: `historical` builds a
//! point-in-time correct training set, `materialize` writes every entity's
//! values as of END to the online store, `get` reads them back with the TTL
//! applied. The same definitions and the same code give the same values.

pub mod definitions;
pub mod offline;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::data::Frame;
use crate::error::{Error, Result};
use crate::report::{Cell, Report, Section};
use crate::store::{self, Record};

use definitions::{Definitions, Feature, View};
use offline::{Events, Value};

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A time given on the command line: RFC 3339 (`2013-01-08T06:00:00Z`,
/// with an offset), `2013-01-08 06:00:00` or `2013-01-08` (UTC), in
/// microseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = text.trim();
    let parsed = DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
                .map(|d| d.and_utc().timestamp_micros())
                .ok()
        })
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc().timestamp_micros())
        });
    parsed.ok_or_else(|| {
        Error::usage(format!(
            "bad time '{text}': expected 2013-01-08, 2013-01-08 06:00:00 or 2013-01-08T06:00:00Z"
        ))
    })
}

/// A time for reports: ISO 8601 in UTC.
pub fn format_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
        .unwrap_or_else(|| micros.to_string())
}

pub struct MaterializeOptions {
    pub definitions: Definitions,
    /// Views to materialize (all when empty).
    pub views: Vec<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub incremental: bool,
}

pub struct HistoricalOptions {
    pub definitions: Definitions,
    pub entities: PathBuf,
    /// `view:feature` or `view` references.
    pub features: Vec<String>,
    /// The entity rows' timestamp column.
    pub timestamp: String,
    pub output: PathBuf,
}

pub struct GetOptions {
    pub definitions: Definitions,
    /// Join key values, `key=value`.
    pub entity: Vec<(String, String)>,
    /// `view:feature` or `view` references (all views when empty).
    pub features: Vec<String>,
    /// The read time for the TTL (now when None).
    pub at: Option<i64>,
}

/// The values of every feature of `view` for `key` as of `at`, and the
/// time of the latest event behind them.
fn values_as_of(
    view: &View,
    events: &Events,
    id: u32,
    at: i64,
) -> (Vec<(String, Value)>, Option<i64>) {
    let mut latest = None;
    let values = view
        .features
        .iter()
        .map(|f| {
            let (value, event) = events.value(view, f, Some(id), at);
            if event.is_some() {
                latest = latest.max(event);
            }
            (f.name().to_string(), value)
        })
        .collect();
    (values, latest)
}

pub fn materialize(opts: &MaterializeOptions) -> Result<Report> {
    let started = Instant::now();
    let now = now_micros();
    let end = opts.end.unwrap_or(now);
    if end > now {
        return Err(Error::usage(format!(
            "--end {} is in the future: values as of a time that has not come yet would change when it comes",
            format_time(end)
        )));
    }
    if opts.incremental && opts.start.is_some() {
        return Err(Error::usage(
            "--incremental starts from the stored watermark: leave out --start",
        ));
    }
    let views: Vec<&View> = if opts.views.is_empty() {
        opts.definitions.views.iter().collect()
    } else {
        opts.views
            .iter()
            .map(|v| opts.definitions.view(v))
            .collect::<Result<_>>()?
    };
    let mut store = store::open(&opts.definitions.store, true)?;
    let mut report = Report::new("features materialize", "Feature materialization");
    let mut section = Section::new(
        "views",
        "Views",
        &[
            ("view", "View"),
            ("start", "From"),
            ("end", "As of"),
            ("source_rows", "Source rows"),
            ("skipped_rows", "Rows without key or time"),
            ("entities", "Entities written"),
            ("rows_per_second", "Source rows/s"),
        ],
    );
    let mut batches = Vec::new();
    let mut total_rows = 0usize;
    let mut total_entities = 0usize;
    for view in views {
        let view_started = Instant::now();
        let start = if opts.incremental {
            Some(store.watermark(&view.name)?.ok_or_else(|| {
                Error::usage(format!(
                    "view '{}' has no watermark yet: materialize it once without --incremental",
                    view.name
                ))
            })?)
        } else {
            opts.start
        };
        if let Some(s) = start.filter(|&s| s > end) {
            return Err(Error::usage(format!(
                "the start {} is after the end {}",
                format_time(s),
                format_time(end)
            )));
        }
        let events = Events::load(view)?;
        // From a start, only entities whose values can have changed: an
        // event since the start, or one leaving a window since then.
        let entities = match start {
            Some(s) => events.entities_with_events_in(s.saturating_sub(view.longest_window()), end),
            // Entities whose first event comes after END have nothing yet.
            None => events.entities_with_events_in(i64::MIN, end),
        };
        let records: Vec<Record> = entities
            .iter()
            .map(|&id| {
                let (values, event_time) = values_as_of(view, &events, id, end);
                Record {
                    entity: events.keys.name(id).to_string(),
                    values: values.into_iter().map(|(k, v)| (k, v.to_json())).collect(),
                    event_time,
                    as_of: end,
                }
            })
            .collect();
        let seconds = view_started.elapsed().as_secs_f64();
        section.push(vec![
            view.name.clone().into(),
            start.map_or(Cell::Null, |s| format_time(s).into()),
            format_time(end).into(),
            Cell::Int(events.rows as i64),
            Cell::Int((events.keyless_rows + events.timeless_rows) as i64),
            Cell::Int(records.len() as i64),
            Cell::Float(events.rows as f64 / seconds.max(1e-9)),
        ]);
        total_rows += events.rows;
        total_entities += records.len();
        if events.keyless_rows > 0 {
            report.warnings.push(format!(
                "view '{}': {} source rows have a null join key ({}) and were left out",
                view.name,
                events.keyless_rows,
                view.join_keys.join(", ")
            ));
        }
        batches.push((view.name.clone(), records));
    }
    // Every view in one transaction: an interrupted run changes nothing.
    store.write(&batches, end)?;
    let seconds = started.elapsed().as_secs_f64();
    report.figure(
        "entities",
        "Entities written",
        Cell::Int(total_entities as i64),
    );
    report.figure(
        "source_rows",
        "Source rows read",
        Cell::Int(total_rows as i64),
    );
    report.figure("seconds", "Seconds", Cell::Float(seconds));
    report.figure(
        "rows_per_second",
        "Source rows per second",
        Cell::Float(total_rows as f64 / seconds.max(1e-9)),
    );
    report.setting("store", "Store", opts.definitions.store.to_string());
    report.setting("end", "As of", format_time(end));
    report.setting("incremental", "Incremental", Cell::Bool(opts.incremental));
    report.sections.push(section);
    report.gate.message = format!(
        "{total_entities} entities materialized as of {}",
        format_time(end)
    );
    Ok(report)
}

/// One feature computed for every row of a table of entity rows.
struct Computed {
    /// `view:feature`.
    reference: String,
    /// Its column name: the feature's, or `view__feature` when two views
    /// give the same name.
    column: String,
    kind: offline::Kind,
    values: Vec<Value>,
}

/// The values of `references` for every row of `rows` (join keys and the
/// `timestamp` column) as of the row's time: what `historical` writes and
/// `skew` compares against.
fn compute(
    definitions: &Definitions,
    references: &[String],
    rows: &Frame,
    timestamp: &str,
) -> Result<Vec<Computed>> {
    let wanted = definitions.resolve(references)?;
    if wanted.is_empty() {
        return Err(Error::usage("--features names no feature"));
    }
    let times = rows.times(timestamp).map_err(|e| match e {
        Error::Input { path, message } if message.starts_with("no column") => Error::Input {
            path,
            message: format!("{message}: give the entity rows' timestamp column with --timestamp"),
        },
        other => other,
    })?;
    if let Some(row) = times.micros.iter().position(Option::is_none) {
        return Err(Error::input(
            rows.path(),
            format!("row {row}: the timestamp '{timestamp}' is null"),
        ));
    }
    // Plain feature names, unless two views give the same one.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, f) in &wanted {
        *seen.entry(f.name()).or_default() += 1;
    }
    let full_names = seen.values().any(|&n| n > 1);
    let mut events_by_view: HashMap<&str, Events> = HashMap::new();
    let mut ids_by_view: HashMap<&str, (Vec<Option<u32>>, Vec<u32>)> = HashMap::new();
    let at: Vec<i64> = times.micros.iter().map(|t| t.unwrap_or(0)).collect();
    let mut out = Vec::new();
    for (view, feature) in &wanted {
        if !events_by_view.contains_key(view.name.as_str()) {
            let events = Events::load(view)?;
            offline::check_zones(&times, timestamp, &events, view)?;
            let what = format!("view '{}'", view.name);
            let ids = events.ids_of(rows, &view.join_keys, &what)?;
            let order = Events::visit_order(&ids, &at);
            ids_by_view.insert(&view.name, (ids, order));
            events_by_view.insert(&view.name, events);
        }
        let events = &events_by_view[view.name.as_str()];
        let (ids, order) = &ids_by_view[view.name.as_str()];
        let values = events.values_for(view, feature, ids, &at, order);
        out.push(Computed {
            reference: format!("{}:{}", view.name, feature.name()),
            column: if full_names {
                format!("{}__{}", view.name, feature.name())
            } else {
                feature.name().to_string()
            },
            kind: events.kind(feature)?,
            values,
        });
    }
    Ok(out)
}

pub fn historical(opts: &HistoricalOptions) -> Result<Report> {
    let started = Instant::now();
    let entities = Frame::read(&opts.entities, None)?;
    let computed = compute(
        &opts.definitions,
        &opts.features,
        &entities,
        &opts.timestamp,
    )?;
    let mut section = Section::new(
        "features",
        "Features",
        &[
            ("feature", "Feature"),
            ("column", "Column"),
            ("nulls", "Null values"),
        ],
    );
    let mut columns = Vec::new();
    let count = computed.len();
    for c in computed {
        if entities.has(&c.column) {
            return Err(Error::usage(format!(
                "the entity rows already have a column '{}': rename it, or the feature",
                c.column
            )));
        }
        let nulls = c.values.iter().filter(|v| **v == Value::Null).count();
        section.push(vec![
            c.reference.into(),
            c.column.clone().into(),
            Cell::Int(nulls as i64),
        ]);
        columns.push((c.column, offline::column_of(c.kind, c.values)));
    }
    entities.write_with(columns, &opts.output)?;
    let mut report = Report::new("features historical", "Point-in-time training set");
    report.figure("rows", "Entity rows", Cell::Int(entities.height() as i64));
    report.figure("features", "Features", Cell::Int(count as i64));
    report.figure(
        "seconds",
        "Seconds",
        Cell::Float(started.elapsed().as_secs_f64()),
    );
    report.setting(
        "entities",
        "Entity rows",
        opts.entities.display().to_string(),
    );
    report.setting("timestamp", "Timestamp column", opts.timestamp.clone());
    report.setting("output", "Output", opts.output.display().to_string());
    report.sections.push(section);
    report.gate.message = format!(
        "{} rows x {count} features written to {}",
        entities.height(),
        opts.output.display()
    );
    Ok(report)
}

pub struct SkewOptions {
    pub definitions: Definitions,
    /// The serving log: join keys, a timestamp, and the values served, one
    /// column per feature.
    pub log: PathBuf,
    /// `view:feature` or `view` references (default: every feature that has
    /// a column in the log).
    pub features: Vec<String>,
    pub timestamp: String,
    /// Numbers within this (absolute, and relative to the larger) are equal.
    pub tolerance: f64,
    /// The share of mismatching rows a feature may have before exit 1.
    pub max_mismatch: f64,
}

/// Whether a served value equals the offline one (nulls equal nulls).
fn same(served: &Value, offline: &Value, tolerance: f64) -> (bool, Option<f64>) {
    let number = |v: &Value| match v {
        Value::Int(x) => Some(*x as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    };
    match (number(served), number(offline)) {
        (Some(a), Some(b)) => {
            let diff = (a - b).abs();
            let equal = diff <= tolerance || diff <= tolerance * a.abs().max(b.abs()) || a == b;
            (equal, Some(diff))
        }
        _ => (served == offline, None),
    }
}

pub fn skew(opts: &SkewOptions) -> Result<Report> {
    let log = Frame::read(&opts.log, None)?;
    let references: Vec<String> = if opts.features.is_empty() {
        opts.definitions
            .views
            .iter()
            .flat_map(|v| v.features.iter().map(move |f| (v, f)))
            .filter(|(_, f)| log.has(f.name()))
            .map(|(v, f)| format!("{}:{}", v.name, f.name()))
            .collect()
    } else {
        opts.features.clone()
    };
    if references.is_empty() {
        return Err(Error::input(
            &opts.log,
            "no column is named after a defined feature: name the features with --features",
        ));
    }
    let computed = compute(&opts.definitions, &references, &log, &opts.timestamp)?;
    let mut report = Report::new("features skew", "Training-serving skew");
    let mut section = Section::new(
        "features",
        "Features",
        &[
            ("feature", "Feature"),
            ("rows", "Rows"),
            ("mismatches", "Mismatches"),
            ("mismatch_rate", "Mismatch rate"),
            ("max_abs_diff", "Largest difference"),
            ("worst_row", "Row of the largest"),
        ],
    );
    let mut failing = Vec::new();
    for c in &computed {
        let served = log.values(&c.column)?;
        let served: Vec<Value> = (0..log.height())
            .map(|i| offline::value_at(&served, i))
            .collect();
        let mut mismatches = 0usize;
        // The largest numeric difference (for text or a null on one side:
        // the first mismatching row, with no difference to show).
        let mut worst: Option<(Option<f64>, usize)> = None;
        for (row, (s, o)) in served.iter().zip(&c.values).enumerate() {
            let (equal, diff) = same(s, o, opts.tolerance);
            if !equal {
                mismatches += 1;
                let larger = match worst {
                    None => true,
                    Some((w, _)) => {
                        diff.unwrap_or(f64::NEG_INFINITY) > w.unwrap_or(f64::NEG_INFINITY)
                    }
                };
                if larger {
                    worst = Some((diff, row));
                }
            }
        }
        let rate = mismatches as f64 / log.height().max(1) as f64;
        if rate > opts.max_mismatch {
            failing.push(format!("{} ({:.2}%)", c.reference, rate * 100.0));
        }
        section.push(vec![
            c.reference.clone().into(),
            Cell::Int(log.height() as i64),
            Cell::Int(mismatches as i64),
            Cell::Float(rate),
            worst.and_then(|(d, _)| d).map_or(Cell::Null, Cell::Float),
            worst.map_or(Cell::Null, |(_, r)| Cell::Int(r as i64)),
        ]);
    }
    report.figure("rows", "Logged rows", Cell::Int(log.height() as i64));
    report.figure(
        "features",
        "Features compared",
        Cell::Int(computed.len() as i64),
    );
    report.figure(
        "failing",
        "Features over the budget",
        Cell::Int(failing.len() as i64),
    );
    report.setting("log", "Serving log", opts.log.display().to_string());
    report.setting("timestamp", "Timestamp column", opts.timestamp.clone());
    report.setting(
        "tolerance",
        "Numeric tolerance",
        Cell::Float(opts.tolerance),
    );
    report.setting(
        "max_mismatch",
        "Mismatch budget",
        Cell::Float(opts.max_mismatch),
    );
    report.sections.push(section);
    report.gate.rule = format!(
        "every feature's share of rows whose served value differs from the offline one (beyond {}) <= {}",
        opts.tolerance, opts.max_mismatch
    );
    if failing.is_empty() {
        report.gate.message = format!(
            "{} features served as computed offline, within the budget",
            computed.len()
        );
    } else {
        report.gate.outcome = crate::report::Outcome::Fail;
        report.gate.message = format!("training-serving skew: {}", failing.join(", "));
    }
    Ok(report)
}

pub fn get(opts: &GetOptions) -> Result<Report> {
    let wanted: Vec<(&View, &Feature)> = if opts.features.is_empty() {
        // Every view whose join keys the entity gives.
        let given = |k: &String| opts.entity.iter().any(|(name, _)| name == k);
        let views: Vec<&View> = opts
            .definitions
            .views
            .iter()
            .filter(|v| v.join_keys.iter().all(given))
            .collect();
        if views.is_empty() {
            return Err(Error::usage(format!(
                "no view is keyed by the entity given: {}",
                opts.definitions
                    .views
                    .iter()
                    .map(|v| format!("{} by {}", v.name, v.join_keys.join("+")))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        views
            .into_iter()
            .flat_map(|v| v.features.iter().map(move |f| (v, f)))
            .collect()
    } else {
        opts.definitions.resolve(&opts.features)?
    };
    let at = opts.at.unwrap_or_else(now_micros);
    let mut store = store::open(&opts.definitions.store, false)?;
    let mut report = Report::new("features get", "Online feature values");
    let mut section = Section::new(
        "features",
        "Features",
        &[
            ("view", "View"),
            ("feature", "Feature"),
            ("value", "Value"),
            ("status", "Status"),
            ("event_time", "Event time"),
            ("as_of", "Materialized as of"),
        ],
    );
    let mut records: HashMap<&str, Option<Record>> = HashMap::new();
    let (mut present, mut missing) = (0, 0);
    for (view, feature) in wanted {
        if !records.contains_key(view.name.as_str()) {
            let parts: Vec<&str> = view
                .join_keys
                .iter()
                .map(|k| {
                    opts.entity
                        .iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, v)| v.as_str())
                        .ok_or_else(|| {
                            Error::usage(format!(
                                "view '{}' is keyed by {}: give --entity {k}=VALUE",
                                view.name,
                                view.join_keys.join(", ")
                            ))
                        })
                })
                .collect::<Result<_>>()?;
            let record = store.read(&view.name, &offline::composite_key(&parts))?;
            records.insert(&view.name, record);
        }
        let record = records[view.name.as_str()].as_ref();
        let (value, status) = match record {
            None => (offline::empty(feature), "missing"),
            Some(r) => {
                let expired = matches!(feature, Feature::Latest { .. })
                    && view
                        .ttl
                        .zip(r.event_time)
                        .is_some_and(|(ttl, event)| at - event > ttl);
                let value = r
                    .values
                    .get(feature.name())
                    .map_or(Value::Null, Value::from_json);
                if expired {
                    (Value::Null, "expired")
                } else if value == Value::Null {
                    (Value::Null, "null")
                } else {
                    (value, "present")
                }
            }
        };
        if status == "present" {
            present += 1;
        } else {
            missing += 1;
        }
        section.push(vec![
            view.name.clone().into(),
            feature.name().into(),
            match value {
                Value::Null => Cell::Null,
                Value::Int(v) => Cell::Int(v),
                Value::Float(v) => Cell::Float(v),
                Value::Text(v) => Cell::Text(v),
                Value::Bool(v) => Cell::Bool(v),
            },
            status.into(),
            record
                .and_then(|r| r.event_time)
                .map_or(Cell::Null, |t| format_time(t).into()),
            record.map_or(Cell::Null, |r| format_time(r.as_of).into()),
        ]);
    }
    report.figure("present", "Values present", Cell::Int(present));
    report.figure(
        "absent",
        "Values missing, expired or null",
        Cell::Int(missing),
    );
    report.setting("store", "Store", opts.definitions.store.to_string());
    report.setting("read_at", "Read at (for the TTL)", format_time(at));
    report.setting(
        "entity",
        "Entity",
        opts.entity
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    report.sections.push(section);
    report.gate.message = format!("{present} values present, {missing} missing, expired or null");
    Ok(report)
}
