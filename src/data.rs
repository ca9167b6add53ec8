//! Reading tables: parquet (scanned lazily with polars, so only the columns a
//! command asks for are read) and CSV. Everything here returns plain Rust
//! values; no other module touches polars.

use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_core::query_result::QueryResult;

use crate::error::{Error, Result};

mod dictionary_codes;
mod float_pages;
pub use dictionary_codes::{DictionaryCodes, Entries, GroupCodes, NULL};
pub use float_pages::{column_stride, FloatRows};

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
    /// A list per row (token ids, embeddings).
    List,
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
            ValueType::List => "list",
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
        DataType::List(_) => ValueType::List,
        _ => ValueType::Other,
    }
}

/// An opened table: its path, its lazy scan and its schema.
pub struct Table {
    pub path: PathBuf,
    frame: LazyFrame,
    /// Whether `frame` is already in memory (small files, CSV): queries then
    /// run on the in-memory engine, which starts faster than the streaming one.
    in_memory: bool,
    pub columns: Vec<(String, ValueType)>,
}

/// Parquet files up to this size are read into memory once; larger ones are
/// streamed, one query per column, so memory follows distinct values.
const IN_MEMORY_BYTES: u64 = 32 << 20;

/// How rows are grouped before counting: all together, in consecutive
/// blocks of rows, or in calendar-aligned time windows (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    Whole,
    RowBlocks(usize),
    Time { column: String, width_micros: i64 },
}

/// Counts of each distinct value per group. The group is the block or window
/// number (`None`: the row has no timestamp); the value is `None` for nulls.
#[derive(Debug, Clone)]
pub enum ValueCounts {
    Numbers(Vec<(Option<i64>, Option<f64>, u64)>),
    Text(Vec<(Option<i64>, Option<String>, u64)>),
    Micros(Vec<(Option<i64>, Option<i64>, u64)>),
}

/// Per group: rows whose prediction could be checked against a label, and
/// how many of them were right (classification) or their squared error
/// (regression).
#[derive(Debug, Clone, Default)]
pub struct OutcomeCounts {
    pub labelled: u64,
    pub hits: u64,
    pub squared_error: f64,
}

/// Per group and confidence bin: rows, summed confidence, correct rows.
#[derive(Debug, Clone, Default)]
pub struct ConfidenceBin {
    pub rows: u64,
    pub confidence_sum: f64,
    pub hits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
}

/// Refuses a parquet file with a top-level column of a type this build of
/// polars does not read (decimals and 16-bit floats stopped it with an
/// internal error, 8- and 16-bit unsigned integers with "cannot create
/// series"): one line naming the column and what to write instead. A
/// footer that does not decode is left for polars to report.
fn refuse_unread_types(path: &Path, file: &mut std::fs::File) -> Result<()> {
    use polars_parquet::parquet::schema::types::{
        IntegerType, ParquetType, PrimitiveConvertedType, PrimitiveLogicalType,
    };
    let Ok(metadata) = polars_parquet::parquet::read::read_metadata(file) else {
        return Ok(());
    };
    for field in metadata.schema().fields() {
        let ParquetType::PrimitiveType(column) = field else {
            continue;
        };
        let holds = match (column.logical_type, column.converted_type) {
            (Some(PrimitiveLogicalType::Decimal(digits, scale)), _)
            | (None, Some(PrimitiveConvertedType::Decimal(digits, scale))) => {
                format!("decimals ({digits} digits, {scale} after the point)")
            }
            (Some(PrimitiveLogicalType::Float16), _) => "16-bit floats".to_string(),
            (Some(PrimitiveLogicalType::Integer(IntegerType::UInt8 | IntegerType::UInt16)), _)
            | (None, Some(PrimitiveConvertedType::Uint8 | PrimitiveConvertedType::Uint16)) => {
                "8- or 16-bit unsigned integers".to_string()
            }
            _ => continue,
        };
        return Err(Error::input(
            path,
            format!(
                "column '{}' holds {holds}, which mlctl does not read: write it as float64, or as a 32- or 64-bit integer",
                column.field_info.name
            ),
        ));
    }
    Ok(())
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
        refuse_unread_types(path, &mut file)?;
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

/// Integer division rounding down, so that times before 1970 fall in the
/// right window. Polars divides integers with floor semantics (as Python
/// does, not as Rust does); the windows test before the epoch pins this.
fn floor_div(x: Expr, divisor: i64) -> Expr {
    x / lit(divisor)
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
            // A CSV file is parsed once into memory: every later query
            // (one per column) would otherwise parse the text again.
            Format::Csv => LazyCsvReader::new(PlRefPath::new(text))
                .with_has_header(true)
                .with_glob(false)
                .with_try_parse_dates(true)
                .with_infer_schema_length(Some(10_000))
                .finish()
                .and_then(|lf| lf.collect())
                .map_err(|e| polars_error(path, e))?
                .lazy(),
        };
        let small = std::fs::metadata(path)
            .map(|m| m.len() <= IN_MEMORY_BYTES)
            .unwrap_or(false);
        let in_memory = format == Format::Csv || small;
        if format == Format::Parquet && small {
            frame = frame.collect().map_err(|e| polars_error(path, e))?.lazy();
        }
        let schema = frame.collect_schema().map_err(|e| polars_error(path, e))?;
        let columns = schema
            .iter()
            .map(|(name, dtype)| (name.to_string(), value_type(dtype)))
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            frame,
            in_memory,
            columns,
        })
    }

    pub fn value_type(&self, column: &str) -> Option<ValueType> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, t)| *t)
    }

    /// Number of rows (from the file's metadata for parquet).
    pub fn row_count(&self) -> Result<usize> {
        let df = self
            .frame
            .clone()
            .select([len().alias("n")])
            .collect()
            .map_err(|e| polars_error(&self.path, e))?;
        let n = df
            .column("n")
            .and_then(|c| c.cast(&DataType::UInt64))
            .map_err(|e| polars_error(&self.path, e))?;
        let n = n
            .u64()
            .map_err(|e| polars_error(&self.path, e))?
            .get(0)
            .unwrap_or(0);
        Ok(n as usize)
    }

    /// An expression for a time column in microseconds since the epoch.
    fn micros(&self, column: &str) -> Result<Expr> {
        let dtype = self
            .frame
            .clone()
            .collect_schema()
            .map_err(|e| polars_error(&self.path, e))?
            .get(column)
            .cloned()
            .ok_or_else(|| Error::input(&self.path, format!("no column '{column}'")))?;
        let raw = col(column).cast(DataType::Int64);
        match dtype {
            DataType::Datetime(TimeUnit::Microseconds, _) => Ok(raw),
            DataType::Datetime(TimeUnit::Milliseconds, _) => Ok(raw * lit(1000i64)),
            DataType::Datetime(TimeUnit::Nanoseconds, _) => Ok(floor_div(raw, 1000)),
            DataType::Date => Ok(
                col(column).cast(DataType::Int32).cast(DataType::Int64) * lit(86_400_000_000i64)
            ),
            other => Err(Error::input(
                &self.path,
                format!("column '{column}' is {other}, not a timestamp"),
            )),
        }
    }

    /// The frame with a `__group` column computed per `grouping`.
    fn grouped(&self, grouping: &Grouping) -> Result<(LazyFrame, Expr)> {
        Ok(match grouping {
            // A literal alone is one row, not one per row: add it as a column.
            Grouping::Whole => (
                self.frame.clone().with_column(lit(0i64).alias("__group")),
                col("__group"),
            ),
            Grouping::RowBlocks(size) => (
                self.frame.clone().with_row_index("__row", None),
                floor_div(col("__row").cast(DataType::Int64), *size as i64).alias("__group"),
            ),
            Grouping::Time {
                column,
                width_micros,
            } => (
                self.frame.clone(),
                floor_div(self.micros(column)?, *width_micros).alias("__group"),
            ),
        })
    }

    fn run(&self, frame: LazyFrame) -> Result<DataFrame> {
        // The streaming engine keeps memory bounded by the groups, not the rows.
        let engine = if self.in_memory {
            Engine::InMemory
        } else {
            Engine::Streaming
        };
        match frame.collect_with_engine(engine) {
            Ok(QueryResult::Single(df)) => Ok(df),
            Ok(QueryResult::Multiple(_)) => {
                Err(Error::input(&self.path, "unexpected query result"))
            }
            Err(e) => Err(polars_error(&self.path, e)),
        }
    }

    /// Counts the distinct values of one column per group, streaming.
    pub fn value_counts(&self, column: &str, grouping: &Grouping) -> Result<ValueCounts> {
        let value_type = self
            .value_type(column)
            .ok_or_else(|| Error::input(&self.path, format!("no column '{column}'")))?;
        // Group on the column as stored and convert only the (small) counted
        // result: casting every row first would cost more than the counting.
        let value = match value_type {
            ValueType::Time => self.micros(column)?,
            ValueType::Other | ValueType::List => {
                return Err(Error::input(
                    &self.path,
                    format!("column '{column}' has a type mlctl does not analyse"),
                ))
            }
            _ => col(column),
        };
        let query = match grouping {
            Grouping::Whole => self
                .frame
                .clone()
                .select([value.alias("__value")])
                .group_by([col("__value")])
                .agg([len().alias("__n")])
                .with_column(lit(0i64).alias("__group")),
            _ => {
                let (frame, group) = self.grouped(grouping)?;
                frame
                    .select([group, value.alias("__value")])
                    .group_by([col("__group"), col("__value")])
                    .agg([len().alias("__n")])
            }
        };
        let df = self.run(query)?;
        let out = Columns {
            df: &df,
            table: self,
        };
        let groups = out.i64s("__group")?;
        let counts = out.u64s("__n")?;
        fn triples<K>(
            groups: Vec<Option<i64>>,
            keys: Vec<Option<K>>,
            counts: Vec<u64>,
        ) -> Vec<(Option<i64>, Option<K>, u64)> {
            groups
                .into_iter()
                .zip(keys)
                .zip(counts)
                .map(|((g, k), n)| (g, k, n))
                .collect()
        }
        Ok(match value_type {
            ValueType::Integer | ValueType::Float => {
                ValueCounts::Numbers(triples(groups, out.f64s("__value")?, counts))
            }
            ValueType::Time => ValueCounts::Micros(triples(groups, out.i64s("__value")?, counts)),
            _ => ValueCounts::Text(triples(groups, out.strings("__value")?, counts)),
        })
    }

    /// Rows per group.
    pub fn group_sizes(&self, grouping: &Grouping) -> Result<Vec<(Option<i64>, u64)>> {
        let (frame, group) = self.grouped(grouping)?;
        let df = self.run(
            frame
                .select([group])
                .group_by([col("__group")])
                .agg([len().alias("__n")]),
        )?;
        let out = Columns {
            df: &df,
            table: self,
        };
        Ok(out
            .i64s("__group")?
            .into_iter()
            .zip(out.u64s("__n")?)
            .collect())
    }

    /// Reads rows `offset..offset + len` of numeric columns as f64, column by
    /// column. Nulls become NaN; their count is returned with the values.
    pub fn read_numbers(
        &self,
        names: &[String],
        offset: usize,
        len: usize,
    ) -> Result<(Vec<Vec<f64>>, usize)> {
        let exprs: Vec<Expr> = names
            .iter()
            .map(|n| col(n.as_str()).cast(DataType::Float64))
            .collect();
        let df = self.slice(exprs, offset, len)?;
        let out = Columns {
            df: &df,
            table: self,
        };
        let mut nulls = 0;
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            let v = out.f64s(name)?;
            nulls += v.iter().filter(|x| x.is_none()).count();
            columns.push(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect());
        }
        Ok((columns, nulls))
    }

    /// Reads rows `offset..offset + len` of a list column as numbers
    /// (`None` for a null row).
    pub fn read_lists(
        &self,
        name: &str,
        offset: usize,
        len: usize,
    ) -> Result<Vec<Option<Vec<f64>>>> {
        let df = self.slice(vec![col(name)], offset, len)?;
        let err = |e: PolarsError| Error::input(&self.path, format!("column '{name}': {e}"));
        let column = df.column(name).map_err(err)?;
        let lists = column.list().map_err(err)?;
        let mut out = Vec::with_capacity(lists.len());
        for i in 0..lists.len() {
            out.push(match lists.get_as_series(i) {
                None => None,
                Some(series) => {
                    let values = series.cast(&DataType::Float64).map_err(err)?;
                    Some(
                        values
                            .f64()
                            .map_err(err)?
                            .iter()
                            .map(|v| v.unwrap_or(f64::NAN))
                            .collect(),
                    )
                }
            });
        }
        Ok(out)
    }

    /// Reads rows `offset..offset + len` of one column as text.
    pub fn read_text(&self, name: &str, offset: usize, len: usize) -> Result<Vec<Option<String>>> {
        let df = self.slice(vec![col(name).cast(DataType::String)], offset, len)?;
        Columns {
            df: &df,
            table: self,
        }
        .strings(name)
    }

    /// Whether the whole table was decoded into memory when opened (a CSV
    /// file, or a small parquet file): reading any range of it then costs
    /// no decoding.
    pub fn is_in_memory(&self) -> bool {
        self.in_memory
    }

    /// Row ranges `(offset, len)` of about `target` rows that cover the
    /// table in order. For a streamed parquet file they follow its row
    /// groups (whole groups, merged up to `target`), so reading the ranges
    /// one after another decodes each row group once and holds about one
    /// range in memory, whatever the file's size.
    pub fn chunks(&self, target: usize) -> Result<Vec<(usize, usize)>> {
        let target = target.max(1);
        if self.in_memory {
            // Already decoded: any split costs nothing.
            let rows = self.row_count()?;
            return Ok((0..rows)
                .step_by(target)
                .map(|offset| (offset, target.min(rows - offset)))
                .collect());
        }
        let file = std::fs::File::open(&self.path).map_err(|e| Error::input(&self.path, e))?;
        let mut reader = ParquetReader::new(file);
        let metadata = reader
            .get_metadata()
            .map_err(|e| polars_error(&self.path, e))?;
        let mut ranges = Vec::new();
        let mut start = 0;
        let mut pending = 0;
        for group in metadata.row_groups.iter().map(|g| g.num_rows()) {
            pending += group;
            if pending >= target {
                ranges.push((start, pending));
                start += pending;
                pending = 0;
            }
        }
        if pending > 0 {
            ranges.push((start, pending));
        }
        Ok(ranges)
    }

    /// Rows `offset..offset + len` of `columns` as an in-memory [`Frame`].
    pub fn read_frame(&self, columns: &[String], offset: usize, len: usize) -> Result<Frame> {
        if columns.is_empty() {
            // No query: a frame of no columns, `len` rows high.
            let rows = self.row_count()?.saturating_sub(offset).min(len);
            return Ok(Frame {
                path: self.path.clone(),
                df: DataFrame::new(rows, Vec::new()).map_err(|e| polars_error(&self.path, e))?,
            });
        }
        let exprs = columns.iter().map(|c| col(c.as_str())).collect();
        Ok(Frame {
            path: self.path.clone(),
            df: self.slice(exprs, offset, len)?,
        })
    }

    fn slice(&self, exprs: Vec<Expr>, offset: usize, len: usize) -> Result<DataFrame> {
        self.frame
            .clone()
            .slice(offset as i64, len as IdxSize)
            .select(exprs)
            .collect()
            .map_err(|e| polars_error(&self.path, e))
    }

    /// Whether the prediction matches the label, row by row, as an
    /// expression: numbers compare as numbers, anything else as text; null
    /// when either is missing.
    fn correct(&self, prediction: &str, label: &str) -> Expr {
        let numeric = |c: &str| self.value_type(c).is_some_and(ValueType::is_numeric);
        if numeric(prediction) && numeric(label) {
            col(prediction)
                .cast(DataType::Float64)
                .eq(col(label).cast(DataType::Float64))
        } else {
            col(prediction)
                .cast(DataType::String)
                .eq(col(label).cast(DataType::String))
        }
    }

    /// Labelled rows and hits (classification) or squared error (regression)
    /// per group.
    pub fn outcomes(
        &self,
        prediction: &str,
        label: &str,
        regression: bool,
        grouping: &Grouping,
    ) -> Result<Vec<(Option<i64>, OutcomeCounts)>> {
        let (frame, group) = self.grouped(grouping)?;
        let aggs = if regression {
            let error =
                col(prediction).cast(DataType::Float64) - col(label).cast(DataType::Float64);
            vec![
                error
                    .clone()
                    .is_not_null()
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("__labelled"),
                lit(0u64).alias("__hits"),
                (error.clone() * error).sum().alias("__se"),
            ]
        } else {
            let correct = self.correct(prediction, label);
            vec![
                correct
                    .clone()
                    .is_not_null()
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("__labelled"),
                correct.cast(DataType::UInt64).sum().alias("__hits"),
                lit(0f64).alias("__se"),
            ]
        };
        let df = self.run(frame.group_by([group]).agg(aggs))?;
        let out = Columns {
            df: &df,
            table: self,
        };
        let (labelled, hits, se) = (
            out.u64s("__labelled")?,
            out.u64s("__hits")?,
            out.f64s("__se")?,
        );
        Ok(out
            .i64s("__group")?
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                let counts = OutcomeCounts {
                    labelled: labelled[i],
                    hits: hits[i],
                    squared_error: se[i].unwrap_or(0.0),
                };
                (g, counts)
            })
            .collect())
    }

    /// Rows, confidence and hits per group and per equal-width confidence bin
    /// (bin b holds confidences in (b/n, (b+1)/n]; 0 joins the first bin).
    /// Only rows with a label and a finite confidence count.
    pub fn confidence_bins(
        &self,
        prediction: &str,
        label: &str,
        confidence: &str,
        n_bins: usize,
        grouping: &Grouping,
    ) -> Result<Vec<(Option<i64>, usize, ConfidenceBin)>> {
        let (frame, group) = self.grouped(grouping)?;
        let conf = col(confidence).cast(DataType::Float64);
        let scaled = conf.clone() * lit(n_bins as f64);
        let truncated = scaled.clone().cast(DataType::Int64);
        // ceil(x) - 1 for x > 0, without the rounding feature: trunc(x) plus
        // one when x has a fractional part.
        let ceil = when(scaled.gt(truncated.clone().cast(DataType::Float64)))
            .then(truncated.clone() + lit(1i64))
            .otherwise(truncated);
        let bin = when(ceil.clone().lt_eq(lit(1i64)))
            .then(lit(0i64))
            .when(ceil.clone().gt_eq(lit(n_bins as i64)))
            .then(lit(n_bins as i64 - 1))
            .otherwise(ceil - lit(1i64))
            .alias("__bin");
        let correct = self.correct(prediction, label);
        let usable = correct
            .clone()
            .is_not_null()
            .and(conf.clone().is_not_null())
            .and(conf.clone().is_finite());
        let df = self.run(
            frame.filter(usable).group_by([group, bin]).agg([
                len().alias("__n"),
                when(conf.clone().gt(lit(1.0)))
                    .then(lit(1.0))
                    .when(conf.clone().lt(lit(0.0)))
                    .then(lit(0.0))
                    .otherwise(conf)
                    .sum()
                    .alias("__conf"),
                correct.cast(DataType::UInt64).sum().alias("__hits"),
            ]),
        )?;
        let out = Columns {
            df: &df,
            table: self,
        };
        let (groups, bins) = (out.i64s("__group")?, out.i64s("__bin")?);
        let (rows, sums, hits) = (out.u64s("__n")?, out.f64s("__conf")?, out.u64s("__hits")?);
        Ok((0..df.height())
            .map(|i| {
                let bin = ConfidenceBin {
                    rows: rows[i],
                    confidence_sum: sums[i].unwrap_or(0.0),
                    hits: hits[i],
                };
                (groups[i], bins[i].unwrap_or(0).max(0) as usize, bin)
            })
            .collect())
    }
}

/// A column of results to write.
#[derive(Debug, Clone)]
pub enum OutColumn {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Text(Vec<Option<String>>),
    /// A list per row.
    ListF32(Vec<Vec<f32>>),
    ListI64(Vec<Vec<i64>>),
}

impl OutColumn {
    pub fn len(&self) -> usize {
        match self {
            OutColumn::F32(v) => v.len(),
            OutColumn::F64(v) => v.len(),
            OutColumn::I64(v) => v.len(),
            OutColumn::Text(v) => v.len(),
            OutColumn::ListF32(v) => v.len(),
            OutColumn::ListI64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes columns as a parquet file, atomically (see `fsio`).
pub fn write_parquet(path: &Path, columns: Vec<(String, OutColumn)>) -> Result<()> {
    let height = columns.first().map_or(0, |(_, c)| c.len());
    let cols: Vec<polars::prelude::Column> = columns
        .into_iter()
        .map(|(name, c)| {
            let name = PlSmallStr::from(name.as_str());
            match c {
                OutColumn::F32(v) => polars::prelude::Column::new(name, v),
                OutColumn::F64(v) => polars::prelude::Column::new(name, v),
                OutColumn::I64(v) => polars::prelude::Column::new(name, v),
                OutColumn::Text(v) => polars::prelude::Column::new(name, v),
                OutColumn::ListF32(v) => {
                    let rows: Vec<Series> = v
                        .into_iter()
                        .map(|r| Series::new(PlSmallStr::EMPTY, r))
                        .collect();
                    polars::prelude::Column::new(name, rows)
                }
                OutColumn::ListI64(v) => {
                    let rows: Vec<Series> = v
                        .into_iter()
                        .map(|r| Series::new(PlSmallStr::EMPTY, r))
                        .collect();
                    polars::prelude::Column::new(name, rows)
                }
            }
        })
        .collect();
    let mut df = DataFrame::new(height, cols).map_err(|e| Error::output(path, e))?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut df)
        .map_err(|e| Error::output(path, e))?;
    crate::fsio::write_atomic(path, &bytes)
}

/// Reads the columns of a small query result as plain vectors, each cast to
/// the type asked for; an error names the table's file.
struct Columns<'a> {
    df: &'a DataFrame,
    table: &'a Table,
}

impl Columns<'_> {
    fn cast(&self, name: &str, dtype: DataType) -> Result<polars::prelude::Column> {
        self.df
            .column(name)
            .and_then(|c| c.cast(&dtype))
            .map_err(|e| polars_error(&self.table.path, e))
    }

    fn err(&self, e: PolarsError) -> Error {
        polars_error(&self.table.path, e)
    }

    fn i64s(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let c = self.cast(name, DataType::Int64)?;
        Ok(c.i64().map_err(|e| self.err(e))?.iter().collect())
    }

    /// Counts: a null count is zero.
    fn u64s(&self, name: &str) -> Result<Vec<u64>> {
        let c = self.cast(name, DataType::UInt64)?;
        Ok(c.u64()
            .map_err(|e| self.err(e))?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    }

    fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let c = self.cast(name, DataType::Float64)?;
        Ok(c.f64().map_err(|e| self.err(e))?.iter().collect())
    }

    fn strings(&self, name: &str) -> Result<Vec<Option<String>>> {
        let c = self.cast(name, DataType::String)?;
        Ok(c.str()
            .map_err(|e| self.err(e))?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    }
}

/// The values of one column, typed as the feature store keeps them.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Text(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A join key column's values.
#[derive(Debug, Clone)]
pub enum KeyColumn {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

/// A time column: microseconds since the epoch (an instant when the column
/// has a time zone, wall-clock time when it has none), and its zone.
#[derive(Debug, Clone)]
pub struct Times {
    pub micros: Vec<Option<i64>>,
    pub zone: Option<String>,
}

/// A whole table in memory (the feature store's sources and entity rows):
/// one file, or every file a glob matches.
pub struct Frame {
    path: PathBuf,
    df: DataFrame,
}

impl Frame {
    /// Reads `columns` (all when None) of a parquet or CSV file, or of the
    /// parquet files a glob (`*`, `?`, `[`) matches.
    pub fn read(path: &Path, columns: Option<&[String]>) -> Result<Frame> {
        let text = path
            .to_str()
            .ok_or_else(|| Error::input(path, "the path is not valid UTF-8"))?;
        let glob = text.contains(['*', '?', '[']);
        if !glob && !path.exists() {
            return Err(Error::input(path, "no such file"));
        }
        let frame = if glob || detect_format(path)? == Format::Parquet {
            let args = ScanArgsParquet {
                glob,
                ..Default::default()
            };
            LazyFrame::scan_parquet(PlRefPath::new(text), args)
        } else {
            LazyCsvReader::new(PlRefPath::new(text))
                .with_has_header(true)
                .with_try_parse_dates(true)
                .finish()
        }
        .map_err(|e| polars_error(path, e))?;
        let frame = match columns {
            Some(names) => {
                let schema = frame
                    .clone()
                    .collect_schema()
                    .map_err(|e| polars_error(path, e))?;
                if let Some(missing) = names.iter().find(|n| schema.get(n.as_str()).is_none()) {
                    return Err(Error::input(path, format!("no column '{missing}'")));
                }
                frame.select(names.iter().map(|n| col(n.as_str())).collect::<Vec<_>>())
            }
            None => frame,
        };
        let df = frame.collect().map_err(|e| polars_error(path, e))?;
        Ok(Frame {
            path: path.to_path_buf(),
            df,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows `offset..offset + len`, sharing this frame's buffers.
    pub fn slice(&self, offset: usize, len: usize) -> Frame {
        Frame {
            path: self.path.clone(),
            df: self.df.slice(offset as i64, len),
        }
    }

    pub fn height(&self) -> usize {
        self.df.height()
    }

    /// The frame's column names, in order.
    pub fn names(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    }

    pub fn has(&self, column: &str) -> bool {
        self.df.column(column).is_ok()
    }

    fn column(&self, name: &str) -> Result<&polars::prelude::Column> {
        self.df
            .column(name)
            .map_err(|_| Error::input(&self.path, format!("no column '{name}'")))
    }

    fn err(&self, name: &str, e: PolarsError) -> Error {
        Error::input(&self.path, format!("column '{name}': {e}"))
    }

    /// A datetime or date column in microseconds since the epoch.
    pub fn times(&self, name: &str) -> Result<Times> {
        let c = self.column(name)?;
        let (scale_up, scale_down, zone) = match c.dtype() {
            DataType::Datetime(TimeUnit::Microseconds, tz) => (1, 1, tz.clone()),
            DataType::Datetime(TimeUnit::Milliseconds, tz) => (1000, 1, tz.clone()),
            DataType::Datetime(TimeUnit::Nanoseconds, tz) => (1, 1000, tz.clone()),
            DataType::Date => (86_400_000_000, 1, None),
            other => {
                return Err(Error::input(
                    &self.path,
                    format!("column '{name}' is {other}, not a timestamp"),
                ))
            }
        };
        let raw = c.cast(&DataType::Int64).map_err(|e| self.err(name, e))?;
        let micros = raw
            .i64()
            .map_err(|e| self.err(name, e))?
            .iter()
            .map(|v| v.map(|v| (v * scale_up).div_euclid(scale_down)))
            .collect();
        Ok(Times {
            micros,
            zone: zone.map(|z| z.to_string()),
        })
    }

    /// Any column as text (join keys: 42 and "42" are the same key).
    pub fn text(&self, name: &str) -> Result<Vec<Option<String>>> {
        let c = self
            .column(name)?
            .cast(&DataType::String)
            .map_err(|e| self.err(name, e))?;
        Ok(c.str()
            .map_err(|e| self.err(name, e))?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    }

    /// A column with its type: integers, floats, booleans or text.
    pub fn values(&self, name: &str) -> Result<Values> {
        let c = self.column(name)?;
        let cast = |dtype: DataType| c.cast(&dtype).map_err(|e| self.err(name, e));
        Ok(match c.dtype() {
            d if d.is_integer() => {
                let ints = cast(DataType::Int64)?;
                let ints = ints.i64().map_err(|e| self.err(name, e))?;
                // Without nulls, straight from the contiguous values (the
                // generic iterator was a few percent of a replay's reading).
                Values::Int(match ints.cont_slice() {
                    Ok(v) => v.iter().map(|&x| Some(x)).collect(),
                    Err(_) => ints.iter().collect(),
                })
            }
            d if d.is_float() => Values::Float(
                cast(DataType::Float64)?
                    .f64()
                    .map_err(|e| self.err(name, e))?
                    .iter()
                    .collect(),
            ),
            DataType::Boolean => {
                Values::Bool(c.bool().map_err(|e| self.err(name, e))?.iter().collect())
            }
            DataType::String | DataType::Categorical(_, _) | DataType::Enum(_, _) => {
                Values::Text(self.text(name)?)
            }
            other => {
                return Err(Error::input(
                    &self.path,
                    format!(
                        "column '{name}' is {other}: a feature must be a number, a boolean or text"
                    ),
                ))
            }
        })
    }

    /// A join key column: integers as they are (no text made per row),
    /// anything else as text.
    pub fn key_column(&self, name: &str) -> Result<KeyColumn> {
        let c = self.column(name)?;
        if c.dtype().is_integer() {
            let ints = c.cast(&DataType::Int64).map_err(|e| self.err(name, e))?;
            return Ok(KeyColumn::Int(
                ints.i64().map_err(|e| self.err(name, e))?.iter().collect(),
            ));
        }
        Ok(KeyColumn::Text(self.text(name)?))
    }

    /// Numeric (or boolean) columns as one row-major f32 matrix, the layout
    /// a model's 2-D input takes; nulls become NaN and are counted.
    pub fn f32_rows(&self, names: &[String]) -> Result<(Vec<f32>, usize)> {
        /// A column's values where they lie when they are contiguous floats
        /// without nulls (the usual case: no cast, no copy), else converted.
        enum Source<'a> {
            F32(&'a [f32]),
            F64(&'a [f64]),
            Owned(Vec<f32>),
        }
        let width = names.len();
        let height = self.height();
        let mut nulls = 0;
        let mut sources: Vec<Source> = Vec::with_capacity(width);
        for name in names {
            let c = self.column(name)?;
            let direct = match c.dtype() {
                DataType::Float64 if c.null_count() == 0 => c
                    .f64()
                    .ok()
                    .and_then(|a| a.cont_slice().ok())
                    .map(Source::F64),
                DataType::Float32 if c.null_count() == 0 => c
                    .f32()
                    .ok()
                    .and_then(|a| a.cont_slice().ok())
                    .map(Source::F32),
                _ => None,
            };
            if let Some(source) = direct {
                sources.push(source);
                continue;
            }
            let cast = c.cast(&DataType::Float32).map_err(|e| self.err(name, e))?;
            let values = cast.f32().map_err(|e| self.err(name, e))?;
            nulls += values.null_count();
            // Chunk by chunk (a decoded range is often in several): whole
            // slices where a chunk has no nulls.
            let mut owned = Vec::with_capacity(height);
            for chunk in values.downcast_iter() {
                match chunk.validity().filter(|v| v.unset_bits() > 0) {
                    None => owned.extend_from_slice(chunk.values()),
                    Some(valid) => {
                        owned.extend(chunk.values().iter().zip(valid.iter()).map(|(v, ok)| {
                            if ok {
                                *v
                            } else {
                                f32::NAN
                            }
                        }))
                    }
                }
            }
            sources.push(Source::Owned(owned));
        }
        // Transposed in blocks of rows: each block's columns are first
        // converted side by side into a column-major scratch (plain vector
        // conversions), then appended to the matrix row by row. The matrix
        // is written once, never zeroed first. The scratch's columns are
        // padded apart so that they do not all map to the same cache sets.
        // A block is as many rows as a scratch of about 256 KB holds (it
        // stays in L2): reading every column at once is that many streams
        // from memory, and runs of 1024 rows (8 KB of float64 a column)
        // were too short for the prefetcher (30 columns x 128k rows: 5-6
        // ms with 1024-row blocks, 3.5-4.5 ms with 2048-4096).
        let block = transpose_block_rows(width);
        let stride = block + 16;
        let mut scratch = vec![0f32; stride * width];
        let mut data: Vec<f32> = Vec::with_capacity(height * width);
        for first in (0..height).step_by(block) {
            let rows = block.min(height - first);
            let last = first + rows;
            for (column, source) in scratch.chunks_exact_mut(stride).zip(&sources) {
                let column = &mut column[..rows];
                match source {
                    Source::F32(v) => column.copy_from_slice(&v[first..last]),
                    Source::F64(v) => column
                        .iter_mut()
                        .zip(&v[first..last])
                        .for_each(|(out, x)| *out = *x as f32),
                    Source::Owned(v) => column.copy_from_slice(&v[first..last]),
                }
            }
            append_rows(&scratch, stride, width, rows, &mut data);
        }
        Ok((data, nulls))
    }

    /// Calls `f` with each row's value of a column as text and, for texts
    /// of at most 12 bytes, a key equal for equal texts: Arrow keeps such a
    /// text inside the row's 16-byte view, which is the key (masked to the
    /// text's length). A caller looks keys up instead of hashing the bytes.
    pub fn for_each_text_keyed(
        &self,
        name: &str,
        mut f: impl FnMut(Option<&str>, Option<u128>),
    ) -> Result<()> {
        let c = self
            .column(name)?
            .cast(&DataType::String)
            .map_err(|e| self.err(name, e))?;
        let texts = c.str().map_err(|e| self.err(name, e))?;
        if texts.null_count() > 0 {
            texts.iter().for_each(|v| f(v, None));
            return Ok(());
        }
        for chunk in texts.downcast_iter() {
            for (i, view) in chunk.views().iter().enumerate() {
                // SAFETY: a chunk has one view per row.
                let text = unsafe { chunk.value_unchecked(i) };
                // Little-endian: the length in the low 32 bits, then the bytes.
                let key = view.is_inline().then(|| {
                    let bits = 32 + 8 * view.length;
                    let mask = if bits >= 128 {
                        u128::MAX
                    } else {
                        (1u128 << bits) - 1
                    };
                    view.as_u128() & mask
                });
                f(Some(text), key);
            }
        }
        Ok(())
    }

    /// The rows where `keep` is true, in order.
    pub fn filter(&self, keep: &[bool]) -> Result<Frame> {
        let mask = BooleanChunked::from_slice(PlSmallStr::from_static("keep"), keep);
        let df = self
            .df
            .filter(&mask)
            .map_err(|e| polars_error(&self.path, e))?;
        Ok(Frame {
            path: self.path.clone(),
            df,
        })
    }

    /// The rows of `frames` one after the other (same columns), for `path`.
    pub fn concat(path: &Path, frames: Vec<Frame>) -> Result<Frame> {
        let mut frames = frames.into_iter();
        let mut df = match frames.next() {
            Some(first) => first.df,
            None => DataFrame::empty(),
        };
        for f in frames {
            df.vstack_mut(&f.df).map_err(|e| polars_error(path, e))?;
        }
        df.rechunk_mut();
        Ok(Frame {
            path: path.to_path_buf(),
            df,
        })
    }

    /// Frees a column that has been read (the feature store reads its
    /// sources column by column, so they are not held twice).
    pub fn drop_column(&mut self, name: &str) {
        let _ = self.df.drop_in_place(name);
    }

    /// Writes this table with `extra` columns appended, as parquet,
    /// atomically.
    pub fn write_with(&self, extra: Vec<(String, Values)>, out: &Path) -> Result<()> {
        let columns: Vec<polars::prelude::Column> = extra
            .into_iter()
            .map(|(name, values)| {
                let name = PlSmallStr::from(name.as_str());
                match values {
                    Values::Int(v) => polars::prelude::Column::new(name, v),
                    Values::Float(v) => polars::prelude::Column::new(name, v),
                    Values::Text(v) => polars::prelude::Column::new(name, v),
                    Values::Bool(v) => polars::prelude::Column::new(name, v),
                }
            })
            .collect();
        let mut df = self
            .df
            .hstack(&columns)
            .map_err(|e| Error::output(out, e))?;
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .finish(&mut df)
            .map_err(|e| Error::output(out, e))?;
        crate::fsio::write_atomic(out, &bytes)
    }
}

/// Feature by feature `(x - offset[j]) * scale[j]` in float32, as a
/// model's input Scaler computes it: applied where rows are laid out (to a
/// column's dictionary, once, instead of to every row), the model run
/// without its Scaler gives the same bits (`runtime::graph::Graph::
/// take_input_scaler`). NaN (a null) stays NaN.
#[derive(Debug, Clone)]
pub struct FeatureScaling {
    pub offset: Vec<f32>,
    pub scale: Vec<f32>,
}

impl FeatureScaling {
    /// Whether both scale every value to the same bits (`==` on floats
    /// would take -0.0 for 0.0, which can change a zero's sign).
    pub fn same_as(&self, other: &FeatureScaling) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        bits(&self.offset) == bits(&other.offset) && bits(&self.scale) == bits(&other.scale)
    }

    /// One value scaled: the arithmetic of the Scaler operator and of
    /// every layout that stands in for it, in one place, so that they
    /// give the same bits.
    #[inline(always)]
    pub fn scale_one(v: f32, offset: f32, scale: f32) -> f32 {
        (v - offset) * scale
    }

    /// Scales row-major rows of `offset.len()` features.
    pub fn scale_rows(&self, rows: &mut [f32]) {
        for row in rows.chunks_exact_mut(self.offset.len().max(1)) {
            for ((v, &offset), &scale) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = Self::scale_one(*v, offset, scale);
            }
        }
    }
}

/// Rows of a block transposed at a time into rows of `width` floats: a
/// column-major scratch of about 256 KB (it stays in L2), see
/// [`Frame::f32_rows`].
fn transpose_block_rows(width: usize) -> usize {
    ((1 << 16) / width.max(1)).clamp(256, 4096) / 8 * 8
}

/// Appends `rows` rows of a column-major block to `out`, row by row:
/// column `j` of the block holds rows `0..rows` at `block[j * stride..]`.
fn append_rows(block: &[f32], stride: usize, width: usize, rows: usize, out: &mut Vec<f32>) {
    assert!(rows <= stride && block.len() >= stride * width);
    let start = out.len();
    out.reserve(rows * width);
    let dest = &mut out.spare_capacity_mut()[..rows * width];
    let mut i = 0;
    // Eight rows by eight columns at a time where the machine has AVX.
    #[cfg(target_arch = "x86_64")]
    if width >= 8 && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present; the block and `dest` hold what the
        // function reads and writes (asserted above, and `dest` is `rows *
        // width` long).
        i = unsafe { x86_rows::append_rows_by_eight(block, stride, width, rows, dest) };
    }
    // Four rows by four columns at a time, transposed in registers (SSE is
    // part of every x86_64): a quarter of the loads and stores of the
    // element-by-element loop below.
    #[cfg(target_arch = "x86_64")]
    while i + 4 <= rows {
        use std::arch::x86_64::*;
        let mut j = 0;
        while j + 4 <= width {
            // SAFETY: columns j..j + 4 (j + 3 < width) and rows i..i + 4
            // (i + 3 < rows <= stride) lie inside `block` (checked above);
            // the four stores write rows i..i + 4, columns j..j + 4 of the
            // `rows * width` values of `dest`.
            unsafe {
                let columns =
                    std::array::from_fn(|c| _mm_loadu_ps(block.as_ptr().add((j + c) * stride + i)));
                let rows_out = dest.as_mut_ptr() as *mut f32;
                for (r, row) in crate::simd::x86::transpose4(columns)
                    .into_iter()
                    .enumerate()
                {
                    _mm_storeu_ps(rows_out.add((i + r) * width + j), row);
                }
            }
            j += 4;
        }
        for j in j..width {
            for r in i..i + 4 {
                dest[r * width + j].write(block[j * stride + r]);
            }
        }
        i += 4;
    }
    for r in i..rows {
        for j in 0..width {
            dest[r * width + j].write(block[j * stride + r]);
        }
    }
    // SAFETY: every one of the `rows * width` values past `start` was
    // written above.
    unsafe { out.set_len(start + rows * width) };
}

#[cfg(target_arch = "x86_64")]
mod x86_rows {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use crate::simd::x86::{transpose4, transpose8};

    /// The first rows of `append_rows`, a whole number of eight: each eight
    /// rows by eight columns transposed in AVX registers (0.6 of the SSE
    /// four-by-four's instructions a value), the
    /// columns past the last eight four by four, the last few one by one.
    /// Returns the rows written.
    ///
    /// # Safety
    /// The CPU must have AVX; `block` holds `width` columns of at least
    /// `rows` values, `stride` apart; `dest` holds `rows * width` values.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn append_rows_by_eight(
        block: &[f32],
        stride: usize,
        width: usize,
        rows: usize,
        dest: &mut [MaybeUninit<f32>],
    ) -> usize {
        assert!(rows <= stride && block.len() >= stride * width && dest.len() >= rows * width);
        let src = block.as_ptr();
        let out = dest.as_mut_ptr() as *mut f32;
        let mut i = 0;
        // SAFETY (every load and store below): rows i..i + 8 lie below
        // `rows` and columns below `width`, inside `block` and `dest`
        // (asserted above).
        unsafe {
            while i + 8 <= rows {
                let mut j = 0;
                while j + 8 <= width {
                    let columns =
                        std::array::from_fn(|k| _mm256_loadu_ps(src.add((j + k) * stride + i)));
                    for (m, row) in transpose8(columns).into_iter().enumerate() {
                        _mm256_storeu_ps(out.add((i + m) * width + j), row);
                    }
                    j += 8;
                }
                while j + 4 <= width {
                    for half in [i, i + 4] {
                        let columns =
                            std::array::from_fn(|c| _mm_loadu_ps(src.add((j + c) * stride + half)));
                        for (r, row) in transpose4(columns).into_iter().enumerate() {
                            _mm_storeu_ps(out.add((half + r) * width + j), row);
                        }
                    }
                    j += 4;
                }
                for j in j..width {
                    for r in i..i + 8 {
                        *out.add(r * width + j) = *src.add(j * stride + r);
                    }
                }
                i += 8;
            }
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_rows_transposes_blocks_of_any_width_and_height() {
        // Widths below, at and past eight (the AVX eight-by-eight, the
        // four-by-four and the one-by-one columns), heights not a multiple
        // of eight or four; rows appended after rows already there.
        for width in [1, 3, 4, 7, 8, 9, 12, 15, 16, 17, 30, 33] {
            for rows in [0, 1, 5, 8, 13, 64, 1003] {
                let stride = rows + 3;
                let block: Vec<f32> = (0..stride * width).map(|k| k as f32).collect();
                let mut out = vec![-1.0f32; 5];
                append_rows(&block, stride, width, rows, &mut out);
                let mut expected = vec![-1.0f32; 5];
                for r in 0..rows {
                    expected.extend((0..width).map(|j| block[j * stride + r]));
                }
                assert_eq!(out, expected, "{width} columns, {rows} rows");
            }
        }
    }

    #[test]
    fn f32_rows_lays_out_every_column_type_row_by_row_across_blocks() {
        // Two full blocks of the transposition (4096 rows each at six
        // columns) and a partial one whose rows are not a multiple of four;
        // six columns: a group of four transposed in registers and two
        // more. The f64 column comes in two chunks, as a decoded range
        // often does.
        let height = 2 * 4096 + 1003;
        let wide: Vec<f64> = (0..height).map(|i| i as f64 + 0.5).collect();
        let mut wide_chunks = Series::new("a".into(), &wide[..1000]);
        wide_chunks
            .append(&Series::new("a".into(), &wide[1000..]))
            .expect("appended");
        assert_eq!(wide_chunks.n_chunks(), 2);
        let narrow: Vec<f32> = (0..height).map(|i| -(i as f32)).collect();
        let ints: Vec<Option<i64>> = (0..height)
            .map(|i| (i % 7 != 3).then_some(i as i64 * 10))
            .collect();
        let doubled: Vec<f64> = (0..height).map(|i| i as f64 * 2.0).collect();
        let small: Vec<i32> = (0..height).map(|i| -(i as i32) * 3).collect();
        let halves: Vec<f32> = (0..height).map(|i| i as f32 / 2.0).collect();
        let df = DataFrame::new(
            height,
            vec![
                Column::from(wide_chunks),
                Column::new("b".into(), narrow),
                Column::new("c".into(), ints),
                Column::new("d".into(), doubled),
                Column::new("e".into(), small),
                Column::new("f".into(), halves),
            ],
        )
        .expect("a frame");
        let frame = Frame {
            path: PathBuf::from("test.parquet"),
            df,
        };
        let names = ["c", "a", "b", "f", "e", "d"].map(String::from);
        let (data, nulls) = frame.f32_rows(&names).expect("laid out");
        assert_eq!(data.len(), height * 6);
        assert_eq!(nulls, (0..height).filter(|i| i % 7 == 3).count());
        for i in 0..height {
            let row = &data[i * 6..i * 6 + 6];
            if i % 7 == 3 {
                assert!(row[0].is_nan(), "row {i}");
            } else {
                assert_eq!(row[0], i as f32 * 10.0, "row {i}");
            }
            let f = i as f32;
            assert_eq!(
                row[1..],
                [f + 0.5, -f, f / 2.0, -f * 3.0, f * 2.0],
                "row {i}"
            );
        }
    }
}
