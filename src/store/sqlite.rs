//! The SQLite store: one file, nothing to start, readable with the sqlite3
//! tool (`SELECT * FROM mlctl_feature_values`). A materialization is one
//! transaction: an interrupted run leaves the file as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{values_from_text, values_text, OnlineStore, Record};
use crate::error::{Error, Result};

pub struct Sqlite {
    path: PathBuf,
    connection: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mlctl_feature_values (
    view TEXT NOT NULL,
    entity TEXT NOT NULL,
    feature_values TEXT NOT NULL,
    event_time_us INTEGER,
    as_of_us INTEGER NOT NULL,
    PRIMARY KEY (view, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mlctl_watermarks (
    view TEXT PRIMARY KEY,
    end_us INTEGER NOT NULL
);
";

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite> {
        let err = |e: rusqlite::Error| Error::input(path, format!("feature store: {e}"));
        let connection = Connection::open(path).map_err(err)?;
        // Another writer holds the file: wait a little, then say so.
        connection
            .busy_timeout(Duration::from_secs(2))
            .map_err(err)?;
        connection.execute_batch(SCHEMA).map_err(err)?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            connection,
        })
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::input(&self.path, format!("feature store: {e}"))
    }
}

impl OnlineStore for Sqlite {
    fn write(&mut self, batches: &[(String, Vec<Record>)], watermark: i64) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| Error::input(&path, format!("feature store: {e}"));
        let tx = self.connection.transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR REPLACE INTO mlctl_feature_values
                     (view, entity, feature_values, event_time_us, as_of_us) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (view, records) in batches {
                for r in records {
                    insert
                        .execute(params![
                            view,
                            r.entity,
                            values_text(r),
                            r.event_time,
                            r.as_of
                        ])
                        .map_err(err)?;
                }
                tx.execute(
                    "INSERT OR REPLACE INTO mlctl_watermarks (view, end_us) VALUES (?1, ?2)",
                    params![view, watermark],
                )
                .map_err(err)?;
            }
        }
        // Dropped without commit (an error above), the transaction rolls back.
        tx.commit().map_err(err)
    }

    fn read(&mut self, view: &str, entity: &str) -> Result<Option<Record>> {
        let row = self
            .connection
            .query_row(
                "SELECT feature_values, event_time_us, as_of_us FROM mlctl_feature_values
                 WHERE view = ?1 AND entity = ?2",
                params![view, entity],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((text, event_time, as_of)) = row else {
            return Ok(None);
        };
        let values = values_from_text(&text).ok_or_else(|| {
            Error::input(
                &self.path,
                format!("feature store: the values of {view} / {entity} are not a JSON object"),
            )
        })?;
        Ok(Some(Record {
            entity: entity.to_string(),
            values,
            event_time,
            as_of,
        }))
    }

    fn watermark(&mut self, view: &str) -> Result<Option<i64>> {
        self.connection
            .query_row(
                "SELECT end_us FROM mlctl_watermarks WHERE view = ?1",
                params![view],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
