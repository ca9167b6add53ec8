//! The `Report` every command returns, and its renderers. Commands never print:
//! they fill a `Report`; the entry layer picks a renderer from `--format`.
//!
//! The JSON form is the contract CI jobs parse (documented in docs/json.md):
//! keys are stable, table rows are objects keyed by column key.

mod csv;
mod html;
mod markdown;
mod terminal;

use serde::Serialize;

pub use csv::render_csv;
pub use html::render_html;
pub use markdown::render_markdown;
pub use terminal::render_terminal;

/// Version of the JSON layout; bumped only on a breaking change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every gate held: exit 0.
    Pass,
    /// Every gate held, but something deserves a look (a canary judge's
    /// middle verdict): exit 0.
    Marginal,
    /// A gate failed: exit 1.
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Marginal => "marginal",
            Outcome::Fail => "fail",
        }
    }
}

/// The verdict of the command's gate, with the rule that produced it.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub outcome: Outcome,
    pub rule: String,
    pub message: String,
}

/// One cell of a table. JSON writes the natural value (number, string, bool, null).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Status(Status),
}

/// A verdict shown in a table cell; colored on terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Drift,
    Warn,
    Error,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Drift => "drift",
            Status::Warn => "warn",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Cell::Text(t) => s.serialize_str(t),
            Cell::Int(i) => s.serialize_i64(*i),
            // JSON has no NaN or infinity: they become null rather than invalid JSON.
            Cell::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Cell::Float(_) | Cell::Null => s.serialize_none(),
            Cell::Bool(b) => s.serialize_bool(*b),
            Cell::Status(st) => st.serialize(s),
        }
    }
}

impl Cell {
    /// Text for the terminal and Markdown: numbers with enough digits to judge
    /// against a threshold, without noise.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => format_float(*f),
            Cell::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Cell::Null => "-".to_string(),
            Cell::Status(s) => s.as_str().to_string(),
        }
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Float(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::Int(v as i64)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::Int(v as i64)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}
impl From<Status> for Cell {
    fn from(v: Status) -> Self {
        Cell::Status(v)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Cell::Null)
    }
}

pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    let a = f.abs();
    if !(1e-4..1e7).contains(&a) {
        format!("{f:.3e}")
    } else if a >= 1000.0 {
        format!("{f:.1}")
    } else {
        let s = format!("{f:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub key: String,
    pub label: String,
}

/// A chart the HTML renderer draws; JSON carries its data too.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chart {
    /// Distributions of one column over the same bins, drawn overlaid.
    Histogram {
        title: String,
        bins: Vec<String>,
        series: Vec<Series>,
    },
    /// A figure per window, with the threshold drawn as a line.
    Trend {
        title: String,
        points: Vec<String>,
        series: Vec<Series>,
        threshold: Option<f64>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// A titled table, with notes and charts; JSON writes rows as objects keyed
/// by column key.
#[derive(Debug, Clone)]
pub struct Section {
    pub key: String,
    pub title: String,
    pub notes: Vec<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    pub charts: Vec<Chart>,
}

impl Section {
    pub fn new(key: &str, title: &str, columns: &[(&str, &str)]) -> Self {
        Section {
            key: key.to_string(),
            title: title.to_string(),
            notes: Vec::new(),
            columns: columns
                .iter()
                .map(|(k, l)| Column {
                    key: k.to_string(),
                    label: l.to_string(),
                })
                .collect(),
            rows: Vec::new(),
            charts: Vec::new(),
        }
    }

    /// Removes those of `keys` whose cells are null in every row (a figure
    /// that does not apply, such as RMSE for a classifier).
    pub fn drop_empty_columns(&mut self, keys: &[&str]) {
        let mut i = 0;
        while i < self.columns.len() {
            let empty = keys.contains(&self.columns[i].key.as_str())
                && self.rows.iter().all(|r| r[i] == Cell::Null);
            if empty {
                self.columns.remove(i);
                for r in &mut self.rows {
                    r.remove(i);
                }
            } else {
                i += 1;
            }
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width in {}", self.key);
        self.rows.push(row);
    }
}

/// A key figure shown at the top of every format.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub key: String,
    pub label: String,
    pub value: Cell,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub command: String,
    pub title: String,
    pub summary: Vec<Figure>,
    /// Every setting in force, defaults included, so a reader knows the rules.
    pub settings: Vec<Figure>,
    pub sections: Vec<Section>,
    pub gate: Gate,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(command: &str, title: impl Into<String>) -> Self {
        Report {
            command: command.to_string(),
            title: title.into(),
            summary: Vec::new(),
            settings: Vec::new(),
            sections: Vec::new(),
            gate: Gate {
                outcome: Outcome::Pass,
                rule: String::new(),
                message: String::new(),
            },
            warnings: Vec::new(),
        }
    }

    pub fn figure(&mut self, key: &str, label: &str, value: impl Into<Cell>) {
        self.summary.push(Figure {
            key: key.into(),
            label: label.into(),
            value: value.into(),
        });
    }

    pub fn setting(&mut self, key: &str, label: &str, value: impl Into<Cell>) {
        self.settings.push(Figure {
            key: key.into(),
            label: label.into(),
            value: value.into(),
        });
    }

    pub fn exit_code(&self) -> i32 {
        match self.gate.outcome {
            Outcome::Pass | Outcome::Marginal => 0,
            Outcome::Fail => 1,
        }
    }

    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "schema_version": SCHEMA_VERSION,
            "mlctl_version": env!("CARGO_PKG_VERSION"),
            "command": self.command,
            "title": self.title,
            "gate": self.gate,
            "summary": figures_as_object(&self.summary),
            "settings": figures_as_object(&self.settings),
            "sections": self.sections.iter().map(section_json).collect::<Vec<_>>(),
            "warnings": self.warnings,
        });
        let mut text = serde_json::to_string_pretty(&value).expect("report JSON");
        text.push('\n');
        text
    }
}

fn figures_as_object(figures: &[Figure]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for f in figures {
        map.insert(
            f.key.clone(),
            serde_json::to_value(&f.value).expect("cell JSON"),
        );
    }
    serde_json::Value::Object(map)
}

fn section_json(section: &Section) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = section
        .rows
        .iter()
        .map(|row| {
            let mut map = serde_json::Map::new();
            for (col, cell) in section.columns.iter().zip(row) {
                map.insert(col.key.clone(), serde_json::to_value(cell).expect("cell"));
            }
            serde_json::Value::Object(map)
        })
        .collect();
    let mut value = serde_json::json!({
        "key": section.key,
        "title": section.title,
        "columns": section.columns.iter().map(|c| &c.key).collect::<Vec<_>>(),
        "rows": rows,
    });
    if !section.notes.is_empty() {
        value["notes"] = serde_json::json!(section.notes);
    }
    if !section.charts.is_empty() {
        value["charts"] = serde_json::to_value(&section.charts).expect("charts");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("drift", "Data drift");
        r.figure("drifted_columns", "Drifted columns", 2usize);
        r.setting("drift_share", "Drift share", 0.5);
        let mut s = Section::new(
            "columns",
            "Columns",
            &[("column", "Column"), ("p_value", "p")],
        );
        s.push(vec!["age".into(), 0.01.into()]);
        s.push(vec!["x|y".into(), Cell::Float(f64::NAN)]);
        r.sections.push(s);
        r.gate = Gate {
            outcome: Outcome::Fail,
            rule: "share >= 0.5".into(),
            message: "drift".into(),
        };
        r
    }

    #[test]
    fn json_rows_are_objects_keyed_by_column_and_nan_is_null() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["command"], "drift");
        assert_eq!(v["gate"]["outcome"], "fail");
        assert_eq!(v["summary"]["drifted_columns"], 2);
        assert_eq!(v["sections"][0]["rows"][0]["column"], "age");
        assert_eq!(v["sections"][0]["rows"][0]["p_value"], 0.01);
        assert!(v["sections"][0]["rows"][1]["p_value"].is_null());
    }

    #[test]
    fn empty_optional_columns_are_dropped() {
        let mut s = Section::new("w", "W", &[("a", "A"), ("rmse", "RMSE"), ("b", "B")]);
        s.push(vec![1i64.into(), Cell::Null, Cell::Null]);
        s.drop_empty_columns(&["rmse", "b"]);
        assert_eq!(s.columns.len(), 1);
        assert_eq!(s.rows[0], vec![Cell::Int(1)]);
    }

    #[test]
    fn floats_print_compactly() {
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(0.123456), "0.1235");
        assert_eq!(format_float(1.5e-9), "1.500e-9");
        assert_eq!(format_float(12345.67), "12345.7");
        assert_eq!(format_float(0.0), "0");
    }

    #[test]
    fn every_renderer_names_the_gate() {
        let r = sample();
        assert!(render_markdown(&r).contains("FAIL"));
        assert!(render_terminal(&r, false).contains("FAIL"));
        let html = render_html(&r);
        assert!(html.contains("FAIL") && html.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn markdown_escapes_pipes_in_cells() {
        assert!(render_markdown(&sample()).contains("x\\|y"));
    }
}
