//! Feature values as of a point in time, from a view's source events: the
//! one computation behind both the training set (`historical`, one time per
//! entity row) and the online store (`materialize`, every entity at END).
//!
//! The source's events are sorted once by (entity, event time, created
//! time); each lookup is then a binary search in its entity's run of
//! events, never a scan of the table or a cross product.

use std::collections::{HashMap, HashSet};

use crate::data::{Frame, KeyColumn, Times, Values};
use crate::error::{Error, Result};

use super::definitions::{Aggregation, Feature, View};

/// Separates the parts of a composite key (a character no text key holds).
const KEY_SEPARATOR: char = '\u{1f}';

/// An entity's key as text: its join keys' values in order.
pub fn composite_key(parts: &[&str]) -> String {
    parts.join(&KEY_SEPARATOR.to_string())
}

/// A key for people: `tailnum=N14228` or `carrier=UA,origin=EWR`.
pub fn describe_key(join_keys: &[String], key: &str) -> String {
    join_keys
        .iter()
        .zip(key.split(KEY_SEPARATOR))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One feature value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl Value {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(v) => (*v).into(),
            // NaN and infinities have no JSON form.
            Value::Float(v) => {
                serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Text(v) => v.clone().into(),
            Value::Bool(v) => (*v).into(),
        }
    }

    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) if !n.is_f64() => Value::Int(i),
                _ => n.as_f64().map_or(Value::Null, Value::Float),
            },
            serde_json::Value::String(s) => Value::Text(s.clone()),
            other => Value::Text(other.to_string()),
        }
    }
}

/// Row i of a typed column as a value.
pub fn value_at(values: &Values, i: usize) -> Value {
    match values {
        Values::Int(v) => v[i].map_or(Value::Null, Value::Int),
        Values::Float(v) => v[i].map_or(Value::Null, Value::Float),
        Values::Text(v) => v[i].clone().map_or(Value::Null, Value::Text),
        Values::Bool(v) => v[i].map_or(Value::Null, Value::Bool),
    }
}

/// The type a feature's values take: a latest value keeps its column's,
/// counts are integers, the other aggregations floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Text,
    Bool,
}

/// Entity keys as small integers: each distinct key is given an id once,
/// so that sorting and lookups compare integers, not text.
#[derive(Default)]
pub struct KeyIndex {
    by_text: HashMap<String, u32>,
    by_int: HashMap<i64, u32>,
    names: Vec<String>,
}

impl KeyIndex {
    fn intern_text(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.by_text.get(text) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(text.to_string());
        self.by_text.insert(text.to_string(), id);
        id
    }

    fn intern_int(&mut self, v: i64) -> u32 {
        if let Some(&id) = self.by_int.get(&v) {
            return id;
        }
        let id = self.intern_text(&v.to_string());
        self.by_int.insert(v, id);
        id
    }

    fn find_int(&self, v: i64) -> Option<u32> {
        self.by_int
            .get(&v)
            .copied()
            .or_else(|| self.by_text.get(&v.to_string()).copied())
    }

    /// The key's text (its join keys' values, joined).
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Each row's key, through `key` (intern or look up), None where a join
/// key is null (`Some(None)`: a key the index does not hold).
fn row_keys(
    frame: &Frame,
    join_keys: &[String],
    mut by_int: impl FnMut(i64) -> Option<u32>,
    mut by_text: impl FnMut(&str) -> Option<u32>,
) -> Result<Vec<Option<Option<u32>>>> {
    let columns: Vec<KeyColumn> = join_keys
        .iter()
        .map(|k| frame.key_column(k))
        .collect::<Result<_>>()?;
    if let [KeyColumn::Int(ints)] = columns.as_slice() {
        return Ok(ints.iter().map(|v| v.map(&mut by_int)).collect());
    }
    let mut text = String::new();
    Ok((0..frame.height())
        .map(|i| {
            text.clear();
            for (n, c) in columns.iter().enumerate() {
                if n > 0 {
                    text.push(KEY_SEPARATOR);
                }
                match c {
                    KeyColumn::Int(v) => text.push_str(&v[i]?.to_string()),
                    KeyColumn::Text(v) => text.push_str(v[i].as_deref()?),
                }
            }
            Some(by_text(&text))
        })
        .collect())
}

/// A view's source, read and sorted for lookups.
pub struct Events {
    /// Event times (microseconds), sorted within each entity's run.
    times: Vec<i64>,
    /// Every column a feature reads, in sorted order.
    columns: HashMap<String, Values>,
    /// The entities' keys; each entity's run of rows, [start, end) in the
    /// sorted order, by key id.
    pub keys: KeyIndex,
    runs: Vec<(usize, usize)>,
    /// The source's time zone (None: wall-clock times).
    pub zone: Option<String>,
    /// Rows left out because a join key was null.
    pub keyless_rows: usize,
    /// Rows left out because the event time was null.
    pub timeless_rows: usize,
    pub rows: usize,
}

impl Events {
    /// Reads the columns `view`'s features need from its source, sorted.
    pub fn load(view: &View) -> Result<Events> {
        let source = &view.source;
        let mut wanted: Vec<String> = view.join_keys.clone();
        wanted.push(source.timestamp.clone());
        wanted.extend(source.created.iter().cloned());
        for f in &view.features {
            if !wanted.iter().any(|w| w == f.column()) {
                wanted.push(f.column().to_string());
            }
        }
        let mut frame = Frame::read(&source.path, Some(&wanted)).map_err(|e| match e {
            Error::Input { path, message } => Error::Input {
                path,
                message: format!(
                    "source '{}' of view '{}': {message}",
                    source.name, view.name
                ),
            },
            other => other,
        })?;
        let rows = frame.height();
        // Each column is freed from the table as soon as it is read.
        let times = frame.times(&source.timestamp)?;
        frame.drop_column(&source.timestamp);
        let created = match &source.created {
            Some(c) => {
                let micros = frame.times(c)?.micros;
                frame.drop_column(c);
                Some(micros)
            }
            None => None,
        };
        let zone = times.zone;
        let times = times.micros;
        let mut keys = KeyIndex::default();
        let ids: Vec<Option<u32>> = {
            let index = std::cell::RefCell::new(&mut keys);
            row_keys(
                &frame,
                &view.join_keys,
                |v| Some(index.borrow_mut().intern_int(v)),
                |t| Some(index.borrow_mut().intern_text(t)),
            )?
            .into_iter()
            .map(Option::flatten)
            .collect()
        };
        for k in &view.join_keys {
            frame.drop_column(k);
        }
        // A counting sort by entity (ids are dense), then each entity's few
        // events by (event time, created time, row): the latest created
        // last among events of one time, so that it wins a tie.
        let mut keyless_rows = 0;
        let mut timeless_rows = 0;
        let mut starts = vec![0usize; keys.names.len() + 1];
        for (id, t) in ids.iter().zip(&times) {
            match (id, t) {
                (None, _) => keyless_rows += 1,
                (_, None) => timeless_rows += 1,
                (Some(id), Some(_)) => starts[*id as usize + 1] += 1,
            }
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut order: Vec<(i64, i64, u32)> = vec![(0, 0, 0); starts[starts.len() - 1]];
        let mut next = starts.clone();
        for (i, (id, t)) in ids.iter().zip(&times).enumerate() {
            if let (Some(id), Some(t)) = (id, t) {
                let c = created.as_ref().and_then(|c| c[i]).unwrap_or(i64::MIN);
                order[next[*id as usize]] = (*t, c, i as u32);
                next[*id as usize] += 1;
            }
        }
        drop((ids, created, times, next));
        let runs: Vec<(usize, usize)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
        for &(s, e) in &runs {
            order[s..e].sort_unstable();
        }
        let event_times = order.iter().map(|o| o.0).collect();
        let rows_in_order: Vec<u32> = order.iter().map(|o| o.2).collect();
        drop(order);
        let mut columns = HashMap::new();
        for f in &view.features {
            if columns.contains_key(f.column()) {
                continue;
            }
            let values = frame.values(f.column())?;
            frame.drop_column(f.column());
            columns.insert(f.column().to_string(), reorder(values, &rows_in_order));
        }
        Ok(Events {
            times: event_times,
            columns,
            keys,
            runs,
            zone,
            keyless_rows,
            timeless_rows,
            rows,
        })
    }

    /// The key ids of a table's rows (entity rows); an error names the first
    /// row with a null join key; None for a key without events.
    pub fn ids_of(
        &self,
        frame: &Frame,
        join_keys: &[String],
        what: &str,
    ) -> Result<Vec<Option<u32>>> {
        let ids = row_keys(
            frame,
            join_keys,
            |v| self.keys.find_int(v),
            |t| self.keys.by_text.get(t).copied(),
        )?;
        if let Some(row) = ids.iter().position(Option::is_none) {
            return Err(Error::input(
                frame.path(),
                format!(
                    "row {row}: a join key of {what} ({}) is null",
                    join_keys.join(", ")
                ),
            ));
        }
        Ok(ids.into_iter().flatten().collect())
    }

    /// The id of one entity's key text.
    pub fn id_of(&self, key: &str) -> Option<u32> {
        self.keys.by_text.get(key).copied()
    }

    /// Entities (ids) with an event in (after, until], in key order.
    pub fn entities_with_events_in(&self, after: i64, until: i64) -> Vec<u32> {
        let mut all: Vec<u32> = (0..self.runs.len() as u32)
            .filter(|&id| {
                let (s, e) = self.runs[id as usize];
                let times = &self.times[s..e];
                let first = times.partition_point(|&t| t <= after);
                first < times.len() && times[first] <= until
            })
            .collect();
        all.sort_unstable_by(|a, b| self.keys.name(*a).cmp(self.keys.name(*b)));
        all
    }

    /// The kind of values `feature` gives.
    pub fn kind(&self, feature: &Feature) -> Result<Kind> {
        let values = self.columns.get(feature.column()).ok_or_else(|| {
            Error::usage(format!(
                "no column '{}' was read for this view",
                feature.column()
            ))
        })?;
        let column_kind = match values {
            Values::Int(_) => Kind::Int,
            Values::Float(_) => Kind::Float,
            Values::Text(_) => Kind::Text,
            Values::Bool(_) => Kind::Bool,
        };
        Ok(match feature {
            Feature::Latest { .. } => column_kind,
            Feature::Window {
                aggregation,
                column,
                name,
                ..
            } => match aggregation {
                Aggregation::Count | Aggregation::CountDistinct => Kind::Int,
                _ if matches!(column_kind, Kind::Int | Kind::Float) => Kind::Float,
                _ => {
                    return Err(Error::usage(format!(
                        "window feature '{name}': {} needs a numeric column, '{column}' is not",
                        aggregation.name()
                    )))
                }
            },
        })
    }

    /// The value of `feature` for entity `id` as of time `at`: the latest
    /// event at or before `at` (and within the TTL), or the aggregation of
    /// the events in (at - window, at]. Also returns the event time the
    /// latest value came from.
    pub fn value(
        &self,
        view: &View,
        feature: &Feature,
        id: Option<u32>,
        at: i64,
    ) -> (Value, Option<i64>) {
        self.value_in(view, feature, &self.columns[feature.column()], id, at)
    }

    /// The order to visit (entity, time) pairs in: by entity, then time, so
    /// that each entity's events are read while they are in cache.
    pub fn visit_order(ids: &[Option<u32>], times: &[i64]) -> Vec<u32> {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by_key(|&r| (ids[r as usize], times[r as usize]));
        order
    }

    /// `value` for many (entity, time) pairs, visited in `order`
    /// (`visit_order`), in the pairs' own order.
    pub fn values_for(
        &self,
        view: &View,
        feature: &Feature,
        ids: &[Option<u32>],
        times: &[i64],
        order: &[u32],
    ) -> Vec<Value> {
        let values = &self.columns[feature.column()];
        let mut out = vec![Value::Null; ids.len()];
        for &r in order {
            let r = r as usize;
            out[r] = self.value_in(view, feature, values, ids[r], times[r]).0;
        }
        out
    }

    fn value_in(
        &self,
        view: &View,
        feature: &Feature,
        values: &Values,
        id: Option<u32>,
        at: i64,
    ) -> (Value, Option<i64>) {
        let Some(&(start, end)) = id.and_then(|id| self.runs.get(id as usize)) else {
            return (empty(feature), None);
        };
        let times = &self.times[start..end];
        let upto = times.partition_point(|&t| t <= at);
        match feature {
            Feature::Latest { .. } => {
                if upto == 0 {
                    return (Value::Null, None);
                }
                let event = times[upto - 1];
                if view.ttl.is_some_and(|ttl| at - event > ttl) {
                    return (Value::Null, Some(event));
                }
                (value_at(values, start + upto - 1), Some(event))
            }
            Feature::Window {
                aggregation,
                window,
                ..
            } => {
                let from = times.partition_point(|&t| t <= at - window);
                (
                    aggregate(values, start + from, start + upto, *aggregation),
                    None,
                )
            }
        }
    }
}

/// A feature's value for an entity with no events: null, and 0 for the
/// counts (the training set gives the same, so a missing entity reads
/// online as it trains).
pub fn empty(feature: &Feature) -> Value {
    match feature {
        Feature::Window {
            aggregation: Aggregation::Count | Aggregation::CountDistinct,
            ..
        } => Value::Int(0),
        _ => Value::Null,
    }
}

/// An aggregation of rows `from..to` (nulls skipped, as SQL does: a count
/// of nothing is 0, a sum or mean of nothing is null).
fn aggregate(values: &Values, from: usize, to: usize, aggregation: Aggregation) -> Value {
    let numbers: Vec<f64> = match values {
        Values::Int(v) => v[from..to].iter().flatten().map(|&x| x as f64).collect(),
        Values::Float(v) => v[from..to].iter().flatten().copied().collect(),
        Values::Text(_) | Values::Bool(_) => Vec::new(),
    };
    match aggregation {
        Aggregation::Count => Value::Int(match values {
            Values::Int(v) => v[from..to].iter().flatten().count(),
            Values::Float(v) => v[from..to].iter().flatten().count(),
            Values::Text(v) => v[from..to].iter().flatten().count(),
            Values::Bool(v) => v[from..to].iter().flatten().count(),
        } as i64),
        Aggregation::CountDistinct => Value::Int(match values {
            Values::Int(v) => v[from..to].iter().flatten().collect::<HashSet<_>>().len(),
            Values::Float(v) => v[from..to]
                .iter()
                .flatten()
                .map(|x| x.to_bits())
                .collect::<HashSet<_>>()
                .len(),
            Values::Text(v) => v[from..to].iter().flatten().collect::<HashSet<_>>().len(),
            Values::Bool(v) => v[from..to].iter().flatten().collect::<HashSet<_>>().len(),
        } as i64),
        _ if numbers.is_empty() => Value::Null,
        Aggregation::Sum => Value::Float(numbers.iter().sum()),
        Aggregation::Mean => Value::Float(numbers.iter().sum::<f64>() / numbers.len() as f64),
        Aggregation::Min => Value::Float(numbers.iter().copied().fold(f64::INFINITY, f64::min)),
        Aggregation::Max => Value::Float(numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    }
}

fn reorder(values: Values, order: &[u32]) -> Values {
    match values {
        Values::Int(v) => Values::Int(order.iter().map(|&i| v[i as usize]).collect()),
        Values::Float(v) => Values::Float(order.iter().map(|&i| v[i as usize]).collect()),
        Values::Text(mut v) => Values::Text(order.iter().map(|&i| v[i as usize].take()).collect()),
        Values::Bool(v) => Values::Bool(order.iter().map(|&i| v[i as usize]).collect()),
    }
}

/// Entity timestamps must be on the same clock as the source's: both
/// instants (time-zone aware, compared in UTC) or both wall-clock times.
pub fn check_zones(
    entity: &Times,
    entity_column: &str,
    events: &Events,
    view: &View,
) -> Result<()> {
    if entity.zone.is_some() != events.zone.is_some() {
        let describe = |z: &Option<String>| {
            z.clone()
                .map_or("no time zone".to_string(), |z| format!("time zone {z}"))
        };
        return Err(Error::usage(format!(
            "entity timestamps '{entity_column}' have {}, source '{}' of view '{}' has {}: give both a time zone or neither",
            describe(&entity.zone),
            view.source.name,
            view.name,
            describe(&events.zone)
        )));
    }
    Ok(())
}

/// Collects values into a typed column.
pub fn column_of(kind: Kind, values: Vec<Value>) -> Values {
    match kind {
        Kind::Int => Values::Int(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Int(x) => Some(x),
                    _ => None,
                })
                .collect(),
        ),
        Kind::Float => Values::Float(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Float(x) => Some(x),
                    Value::Int(x) => Some(x as f64),
                    _ => None,
                })
                .collect(),
        ),
        Kind::Text => Values::Text(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Text(x) => Some(x),
                    _ => None,
                })
                .collect(),
        ),
        Kind::Bool => Values::Bool(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Bool(x) => Some(x),
                    _ => None,
                })
                .collect(),
        ),
    }
}
