//! The Redis store: one hash per view and entity
//! (`mlctl:features:{view}:{entity}`, fields `values`, `event_time_us`,
//! `as_of_us`) and one key per watermark. A materialization is one
//! MULTI/EXEC transaction: all of it lands, or none.

use std::collections::HashMap;
use std::time::Duration;

use super::{values_from_text, values_text, OnlineStore, Record};
use crate::error::{Error, Result};

pub struct Redis {
    url: String,
    connection: redis::Connection,
}

fn record_key(view: &str, entity: &str) -> String {
    format!("mlctl:features:{view}:{entity}")
}

fn watermark_key(view: &str) -> String {
    format!("mlctl:watermark:{view}")
}

impl Redis {
    pub fn open(url: &str) -> Result<Redis> {
        let err = |e: redis::RedisError| Error::input(url, format!("feature store: {e}"));
        let client = redis::Client::open(url).map_err(err)?;
        let connection = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(err)?;
        connection
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        Ok(Redis {
            url: url.to_string(),
            connection,
        })
    }

    fn err(&self, e: redis::RedisError) -> Error {
        Error::input(&self.url, format!("feature store: {e}"))
    }
}

impl OnlineStore for Redis {
    fn write(&mut self, batches: &[(String, Vec<Record>)], watermark: i64) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (view, records) in batches {
            for r in records {
                let key = record_key(view, &r.entity);
                pipe.del(&key).ignore();
                pipe.hset(&key, "values", values_text(r)).ignore();
                pipe.hset(&key, "as_of_us", r.as_of).ignore();
                if let Some(t) = r.event_time {
                    pipe.hset(&key, "event_time_us", t).ignore();
                }
            }
            pipe.set(watermark_key(view), watermark).ignore();
        }
        pipe.query::<()>(&mut self.connection)
            .map_err(|e| self.err(e))
    }

    fn read(&mut self, view: &str, entity: &str) -> Result<Option<Record>> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(record_key(view, entity))
            .query(&mut self.connection)
            .map_err(|e| self.err(e))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Error::input(
                &self.url,
                format!("feature store: the record of {view} / {entity} is damaged"),
            )
        };
        let values = fields
            .get("values")
            .and_then(|t| values_from_text(t))
            .ok_or_else(bad)?;
        let as_of = fields
            .get("as_of_us")
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)?;
        let event_time = match fields.get("event_time_us") {
            Some(t) => Some(t.parse().map_err(|_| bad())?),
            None => None,
        };
        Ok(Some(Record {
            entity: entity.to_string(),
            values,
            event_time,
            as_of,
        }))
    }

    fn watermark(&mut self, view: &str) -> Result<Option<i64>> {
        redis::cmd("GET")
            .arg(watermark_key(view))
            .query(&mut self.connection)
            .map_err(|e| self.err(e))
    }
}
