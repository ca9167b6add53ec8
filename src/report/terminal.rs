//! The terminal table: figures first, then one table per section, then the
//! gate. Colours only when asked for (a terminal without NO_COLOR).

use comfy_table::{
    presets::UTF8_FULL_CONDENSED, Attribute, Cell as TCell, Color, ContentArrangement, Table,
};

use super::{Cell, Outcome, Report, Status};

/// Rows printed per section on a terminal; JSON and files carry them all.
const MAX_TERMINAL_ROWS: usize = 60;
/// Characters shown per cell on a terminal; longer text is cut with "…".
const MAX_CELL_CHARS: usize = 60;

pub fn render_terminal(report: &Report, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&report.title);
    out.push_str("\n\n");
    for f in &report.summary {
        out.push_str(&format!("  {:<46} {}\n", f.label, f.value.display()));
    }
    for section in &report.sections {
        out.push('\n');
        out.push_str(&section.title);
        out.push('\n');
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_content_arrangement(ContentArrangement::Dynamic);
        if !color {
            table.force_no_tty();
        } else {
            table.enforce_styling();
        }
        table.set_header(section.columns.iter().map(|c| TCell::new(&c.label)));
        for row in section.rows.iter().take(MAX_TERMINAL_ROWS) {
            table.add_row(row.iter().map(|cell| styled(cell, color)));
        }
        out.push_str(&table.to_string());
        out.push('\n');
        if section.rows.len() > MAX_TERMINAL_ROWS {
            out.push_str(&format!(
                "  ... {} more rows (use --format json or markdown for all)\n",
                section.rows.len() - MAX_TERMINAL_ROWS
            ));
        }
        for note in &section.notes {
            out.push_str(&format!("  {note}\n"));
        }
    }
    if !report.settings.is_empty() {
        out.push_str("\nSettings\n");
        for s in &report.settings {
            out.push_str(&format!("  {:<46} {}\n", s.label, s.value.display()));
        }
    }
    for w in &report.warnings {
        out.push_str(&format!("\nwarning: {w}"));
    }
    let verdict = match report.gate.outcome {
        Outcome::Pass => "PASS",
        Outcome::Marginal => "MARGINAL",
        Outcome::Fail => "FAIL",
    };
    let verdict = if color {
        let code = match report.gate.outcome {
            Outcome::Pass => 32,
            Outcome::Marginal => 33,
            Outcome::Fail => 31,
        };
        format!("\x1b[1;{code}m{verdict}\x1b[0m")
    } else {
        verdict.to_string()
    };
    out.push_str(&format!("\n{verdict}: {}\n", report.gate.message));
    if !report.gate.rule.is_empty() {
        out.push_str(&format!("  rule: {}\n", report.gate.rule));
    }
    out
}

fn styled(cell: &Cell, color: bool) -> TCell {
    let text = cell.display();
    let text = if text.chars().count() > MAX_CELL_CHARS {
        format!(
            "{}…",
            text.chars().take(MAX_CELL_CHARS - 1).collect::<String>()
        )
    } else {
        text
    };
    let c = TCell::new(text);
    if !color {
        return c;
    }
    match cell {
        Cell::Status(Status::Drift) | Cell::Status(Status::Error) => {
            c.fg(Color::Red).add_attribute(Attribute::Bold)
        }
        Cell::Status(Status::Warn) => c.fg(Color::Yellow),
        Cell::Status(Status::Ok) => c.fg(Color::Green),
        Cell::Status(Status::Skipped) => c.fg(Color::DarkGrey),
        _ => c,
    }
}
