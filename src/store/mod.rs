//! The online feature store: materialized feature values by view and
//! entity, and each view's watermark (the END of its last materialization).
//! SQLite is the embedded default, Redis the option for serving from many
//! machines; both keep the same records and pass the same tests.

mod redis_store;
mod sqlite;

use std::path::PathBuf;

use crate::error::Result;

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Redis(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Redis(url) => write!(f, "{url}"),
        }
    }
}

/// One entity's materialized values of one view.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The entity's key (its join keys' values, see `features::offline`).
    pub entity: String,
    /// Feature name to value, as JSON (numbers keep integer or float).
    pub values: serde_json::Map<String, serde_json::Value>,
    /// When the latest event behind the values happened (microseconds),
    /// for the TTL on read; None when the entity had none in reach.
    pub event_time: Option<i64>,
    /// The END the values were computed as of (microseconds).
    pub as_of: i64,
}

pub trait OnlineStore {
    /// Writes each view's records (replacing what the store held for those
    /// entities) and sets the views' watermarks, all or nothing.
    fn write(&mut self, batches: &[(String, Vec<Record>)], watermark: i64) -> Result<()>;
    /// The record of one entity of `view`, if materialized.
    fn read(&mut self, view: &str, entity: &str) -> Result<Option<Record>>;
    /// The view's watermark, if it was ever materialized.
    fn watermark(&mut self, view: &str) -> Result<Option<i64>>;
}

/// Opens the store at `location`; a SQLite file that does not exist yet is
/// created when `create`, and an error otherwise (a read should not leave
/// an empty store behind).
pub fn open(location: &Location, create: bool) -> Result<Box<dyn OnlineStore>> {
    Ok(match location {
        Location::Sqlite(path) if !create && !path.exists() => {
            return Err(crate::error::Error::input(
                path,
                "no feature store here yet: run `mlctl features materialize` first",
            ))
        }
        Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
        Location::Redis(url) => Box::new(redis_store::Redis::open(url)?),
    })
}

/// A record's values as stored (JSON text) and back.
fn values_text(record: &Record) -> String {
    serde_json::to_string(&record.values).unwrap_or_else(|_| "{}".into())
}

fn values_from_text(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}
