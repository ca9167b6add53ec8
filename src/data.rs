//! Reading tables: parquet (scanned lazily with polars, so only the columns a
//! command asks for are read) and CSV. Everything here returns plain Rust
//! values; no other module touches polars.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};

/// The broad type of a column, as the commands need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Integers: counted as numbers, with their integer nature kept.
    Integer,
    Float,
    Boolean,
    Text,
    /// Datetime or date.
    Time,
    /// Nested or binary data the commands do not analyse.
    Other,
}

impl ValueType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ValueType::Integer | ValueType::Float)
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueType::Integer => "integer",
            ValueType::Float => "float",
            ValueType::Boolean => "boolean",
            ValueType::Text => "text",
            ValueType::Time => "timestamp",
            ValueType::Other => "other",
        }
    }
}

fn value_type(dtype: &DataType) -> ValueType {
    match dtype {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ValueType::Integer,
        DataType::Float32 | DataType::Float64 => ValueType::Float,
        DataType::Boolean => ValueType::Boolean,
        DataType::String | DataType::Categorical(_, _) | DataType::Enum(_, _) => ValueType::Text,
        DataType::Datetime(_, _) | DataType::Date => ValueType::Time,
        _ => ValueType::Other,
    }
}

/// An opened table: its path, its lazy scan and its schema.
pub struct Table {
    pub path: PathBuf,
    frame: LazyFrame,
    pub columns: Vec<(String, ValueType)>,
}

/// The values of one column, converted for analysis.
#[derive(Debug, Clone)]
pub enum Values {
    /// Numbers as f64 (None = null; NaN and infinities kept as read).
    Numbers(Vec<Option<f64>>),
    /// Text and booleans, dictionary-encoded: `codes[i]` indexes `names`,
    /// `NULL_CODE` marks a null. Counting categories then needs no string
    /// allocation per row.
    Text { codes: Vec<u32>, names: Vec<String> },
    /// Timestamps as microseconds since the Unix epoch (None = null).
    Micros(Vec<Option<i64>>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Text { codes, .. } => codes.len(),
            Values::Micros(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The code of a null in `Values::Text`.
pub const NULL_CODE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
}

fn detect_format(path: &Path) -> Result<Format> {
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
    let meta = file.metadata().map_err(|e| Error::input(path, e))?;
    if meta.is_dir() {
        return Err(Error::input(
            path,
            "is a directory, expected a parquet or CSV file",
        ));
    }
    if meta.len() == 0 {
        return Err(Error::input(path, "the file is empty"));
    }
    let n = file.read(&mut head).map_err(|e| Error::input(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if n == 4 && &head == b"PAR1" {
        return Ok(Format::Parquet);
    }
    match ext.as_str() {
        "parquet" | "pq" => Err(Error::input(
            path,
            "not a parquet file (it does not start with the PAR1 magic bytes)",
        )),
        "csv" | "txt" | "tsv" => Ok(Format::Csv),
        _ => Err(Error::input(
            path,
            "unknown table format: expected a .parquet or .csv file",
        )),
    }
}

fn polars_error(path: &Path, e: PolarsError) -> Error {
    Error::input(path, e)
}

impl Table {
    pub fn open(path: &Path) -> Result<Table> {
        if !path.exists() {
            return Err(Error::input(path, "no such file"));
        }
        let format = detect_format(path)?;
        let text = path
            .to_str()
            .ok_or_else(|| Error::input(path, "the path is not valid UTF-8"))?;
        let mut frame = match format {
            Format::Parquet => {
                let args = ScanArgsParquet {
                    glob: false,
                    ..Default::default()
                };
                LazyFrame::scan_parquet(PlRefPath::new(text), args)
                    .map_err(|e| polars_error(path, e))?
            }
            Format::Csv => LazyCsvReader::new(PlRefPath::new(text))
                .with_has_header(true)
                .with_glob(false)
                .with_try_parse_dates(true)
                .with_infer_schema_length(Some(10_000))
                .finish()
                .map_err(|e| polars_error(path, e))?,
        };
        let schema = frame.collect_schema().map_err(|e| polars_error(path, e))?;
        let columns = schema
            .iter()
            .map(|(name, dtype)| (name.to_string(), value_type(dtype)))
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            frame,
            columns,
        })
    }

    pub fn value_type(&self, column: &str) -> Option<ValueType> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, t)| *t)
    }

    /// Reads the named columns (only those) and converts each to `Values`.
    pub fn read(&self, names: &[String]) -> Result<HashMap<String, Values>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let exprs: Vec<Expr> = names.iter().map(|n| col(n.as_str())).collect();
        let df = self
            .frame
            .clone()
            .select(exprs)
            .collect()
            .map_err(|e| polars_error(&self.path, e))?;
        let mut out = HashMap::with_capacity(names.len());
        for name in names {
            let column = df
                .column(name)
                .map_err(|e| polars_error(&self.path, e))?
                .as_materialized_series();
            let values = convert(column)
                .map_err(|e| Error::input(&self.path, format!("column '{name}': {e}")))?;
            out.insert(name.clone(), values);
        }
        Ok(out)
    }
}

fn convert(series: &Series) -> std::result::Result<Values, String> {
    let err = |e: PolarsError| crate::error::one_line(&e.to_string());
    match series.dtype() {
        DataType::Datetime(unit, _) => {
            let per_micro = match unit {
                TimeUnit::Nanoseconds => -1000,
                TimeUnit::Microseconds => 1,
                TimeUnit::Milliseconds => 1000,
            };
            let raw = series.cast(&DataType::Int64).map_err(err)?;
            let ca = raw.i64().map_err(err)?;
            Ok(Values::Micros(
                ca.iter()
                    .map(|v| {
                        v.map(|x| {
                            if per_micro < 0 {
                                x.div_euclid(1000)
                            } else {
                                x * per_micro
                            }
                        })
                    })
                    .collect(),
            ))
        }
        DataType::Date => {
            let raw = series.cast(&DataType::Int32).map_err(err)?;
            let ca = raw.i32().map_err(err)?;
            Ok(Values::Micros(
                ca.iter()
                    .map(|v| v.map(|d| d as i64 * 86_400_000_000))
                    .collect(),
            ))
        }
        dtype if value_type(dtype).is_numeric() => {
            let raw = series.cast(&DataType::Float64).map_err(err)?;
            let ca = raw.f64().map_err(err)?;
            Ok(Values::Numbers(ca.iter().collect()))
        }
        dtype if matches!(value_type(dtype), ValueType::Text | ValueType::Boolean) => {
            let raw = series.cast(&DataType::String).map_err(err)?;
            let ca = raw.str().map_err(err)?;
            let mut index: HashMap<&str, u32> = HashMap::new();
            let mut names = Vec::new();
            let mut codes = Vec::with_capacity(ca.len());
            for v in ca.iter() {
                codes.push(match v {
                    None => NULL_CODE,
                    Some(text) => *index.entry(text).or_insert_with(|| {
                        names.push(text.to_string());
                        (names.len() - 1) as u32
                    }),
                });
            }
            Ok(Values::Text { codes, names })
        }
        other => Err(format!("unsupported type {other}")),
    }
}
