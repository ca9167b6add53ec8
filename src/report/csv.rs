//! CSV: one block per table (the summary figures first, then each section),
//! each with its header row of column keys, blocks separated by an empty
//! line; numbers at full precision, empty cells for missing values.

use super::{Cell, Report};

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn cell(c: &Cell) -> String {
    match c {
        Cell::Text(t) => field(t),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) if f.is_finite() => format!("{f}"),
        Cell::Float(_) | Cell::Null => String::new(),
        Cell::Bool(b) => b.to_string(),
        Cell::Status(s) => s.as_str().to_string(),
    }
}

pub fn render_csv(report: &Report) -> String {
    let mut out = String::from("key,value\n");
    out.push_str(&format!("outcome,{}\n", report.gate.outcome.as_str()));
    for f in &report.summary {
        out.push_str(&format!("{},{}\n", field(&f.key), cell(&f.value)));
    }
    for section in &report.sections {
        out.push('\n');
        let header: Vec<String> = std::iter::once("section".to_string())
            .chain(section.columns.iter().map(|c| field(&c.key)))
            .collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for row in &section.rows {
            let fields: Vec<String> = std::iter::once(field(&section.key))
                .chain(row.iter().map(cell))
                .collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Section;

    #[test]
    fn sections_become_blocks_and_text_is_quoted() {
        let mut r = Report::new("bench", "t");
        r.figure("peak", "Peak", 1.5);
        let mut s = Section::new("latency", "L", &[("model", "Model"), ("p50", "p50")]);
        s.push(vec!["a,b".into(), 0.25.into()]);
        s.push(vec!["say \"x\"".into(), Cell::Null]);
        r.sections.push(s);
        let text = render_csv(&r);
        assert_eq!(
            text,
            "key,value\noutcome,pass\npeak,1.5\n\nsection,model,p50\nlatency,\"a,b\",0.25\nlatency,\"say \"\"x\"\"\",\n"
        );
    }
}
