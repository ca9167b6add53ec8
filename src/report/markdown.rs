//! Markdown for CI job summaries and pull-request comments: the verdict
//! first, key figures, then the tables.

use super::{Outcome, Report};

pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let (icon, verdict) = match report.gate.outcome {
        Outcome::Pass => ("✅", "PASS"),
        Outcome::Marginal => ("⚠️", "MARGINAL"),
        Outcome::Fail => ("❌", "FAIL"),
    };
    out.push_str(&format!("## {}\n\n", escape(&report.title)));
    out.push_str(&format!(
        "**{icon} {verdict}**: {}\n\n",
        escape(&report.gate.message)
    ));
    if !report.gate.rule.is_empty() {
        out.push_str(&format!("_Rule: {}_\n\n", escape(&report.gate.rule)));
    }
    if !report.summary.is_empty() {
        out.push_str("| Figure | Value |\n|---|---|\n");
        for f in &report.summary {
            out.push_str(&format!(
                "| {} | {} |\n",
                escape(&f.label),
                escape(&f.value.display())
            ));
        }
        out.push('\n');
    }
    for w in &report.warnings {
        out.push_str(&format!("> ⚠️ {}\n\n", escape(w)));
    }
    for section in &report.sections {
        out.push_str(&format!("### {}\n\n", escape(&section.title)));
        let header: Vec<String> = section.columns.iter().map(|c| escape(&c.label)).collect();
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
        for row in &section.rows {
            let cells: Vec<String> = row.iter().map(|c| escape(&c.display())).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
        for note in &section.notes {
            out.push_str(&format!("{}\n\n", escape(note)));
        }
    }
    if !report.settings.is_empty() {
        out.push_str("<details><summary>Settings</summary>\n\n| Setting | Value |\n|---|---|\n");
        for s in &report.settings {
            out.push_str(&format!(
                "| {} | {} |\n",
                escape(&s.label),
                escape(&s.value.display())
            ));
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// Keeps a cell inside its table: pipes escaped, newlines folded.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
