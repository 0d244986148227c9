//! The plain-text report, for pasting into a reply on a kernel mailing list: at most
//! [`WIDTH`] columns, ASCII only, no markup. It gives the system, both kernels, the verdict
//! and its evidence (the kernel's own lines where known), the time from the reset to the first
//! fatal sign, and what was missing.
use std::fmt::Write as _;

use super::{Report, markdown::verdict_word, secs};
use crate::verdict::human_duration;

/// Widest line, in columns.
pub const WIDTH: usize = 80;
/// Width of the label column of the System section.
const LABEL: usize = 16;

/// `text` as printable ASCII: control characters become spaces, a few symbols their ASCII
/// spelling, anything else `?` (a terminal or mail client then shows exactly one column each).
#[must_use]
pub fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ' '..='~' => out.push(c),
            '…' => out.push_str("..."),
            'µ' | 'μ' => out.push('u'),
            '→' => out.push_str("->"),
            '—' | '–' => out.push('-'),
            c if c.is_control() || c.is_whitespace() => out.push(' '),
            _ => out.push('?'),
        }
    }
    out
}

/// Wraps `text` (made ASCII) to `WIDTH`: the first line after `first`, the next ones after
/// `rest` (both indentation or a label). Words longer than a line are cut.
#[must_use]
pub fn wrap(text: &str, first: &str, rest: &str) -> Vec<String> {
    let text = ascii(text);
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word = word;
        loop {
            let room = WIDTH.saturating_sub(line.len() + usize::from(!empty));
            if word.len() <= room {
                if !empty {
                    line.push(' ');
                }
                line.push_str(word);
                empty = false;
                break;
            }
            let fresh = WIDTH.saturating_sub(rest.len()).max(1);
            if !empty || word.len() <= fresh {
                // Start a new line, then retry.
                if !empty || line.len() > rest.len() {
                    lines.push(std::mem::replace(&mut line, rest.to_owned()));
                    empty = true;
                    continue;
                }
            }
            // A word longer than a whole line: cut it.
            let cut = room.max(1).min(word.len());
            line.push_str(&word[..cut]);
            lines.push(std::mem::replace(&mut line, rest.to_owned()));
            empty = true;
            word = &word[cut..];
            if word.is_empty() {
                break;
            }
        }
    }
    if !empty || lines.is_empty() {
        lines.push(line);
    }
    lines.iter().map(|l| l.trim_end().to_owned()).collect()
}

fn push(out: &mut String, lines: Vec<String>) {
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
}

/// Renders `report` as plain text.
#[must_use]
pub fn render(report: &Report) -> String {
    let v = &report.verdict;
    let h = &report.header;
    let mut out = String::new();
    let title = wrap(
        &format!("kdump DMA observer report: {}", h.system_name()),
        "",
        "  ",
    );
    let underline = "=".repeat(title.iter().map(String::len).max().unwrap_or(0));
    push(&mut out, title);
    let _ = writeln!(out, "{underline}\n\nSystem");
    for (label, value) in h.rows() {
        let value = value.unwrap_or_else(|| "unknown".into());
        let first = format!("  {:<width$}", format!("{label}:"), width = LABEL);
        push(&mut out, wrap(&value, &first, &" ".repeat(LABEL + 2)));
    }

    let _ = writeln!(out);
    push(
        &mut out,
        wrap(
            &format!(
                "Verdict: {} (confidence {:?})",
                verdict_word(v),
                v.confidence
            ),
            "",
            "  ",
        ),
    );
    push(&mut out, wrap(&v.summary, "  ", "  "));
    let _ = writeln!(out);
    push(
        &mut out,
        wrap(
            &format!(
                "Reset to first fatal sign: {}",
                v.reset_to_first_fatal_ns
                    .map_or_else(|| "none seen".to_owned(), human_duration)
            ),
            "",
            "  ",
        ),
    );

    let _ = writeln!(out, "\nEvidence (the kernel's own lines where known)");
    if v.evidence.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for e in &v.evidence {
        let sources: Vec<&str> = e.sources.iter().map(|s| s.as_str()).collect();
        let head = format!(
            "{} s  {}{}  [{}]",
            secs(e.ts_ns),
            e.kind,
            if e.fatal { " (fatal)" } else { "" },
            sources.join(", ")
        );
        push(&mut out, wrap(&head, "  ", "    "));
        let raw = e
            .index
            .checked_sub(report.boot_start)
            .and_then(|row| report.timeline.get(row))
            .and_then(|ev| ev.raw.as_deref());
        match raw {
            // One raw may hold several kernel lines (AER detail lines folded in): each stays
            // a line of its own.
            Some(lines) => {
                for line in lines.lines().filter(|l| !l.trim().is_empty()) {
                    push(&mut out, wrap(line, "    ", "      "));
                }
            }
            None => push(&mut out, wrap(&e.summary, "    ", "      ")),
        }
    }

    let _ = writeln!(out, "\nWhat was missing");
    if v.missing.is_empty() {
        let _ = writeln!(out, "  nothing noted");
    }
    for m in &v.missing {
        push(&mut out, wrap(m, "  - ", "    "));
    }
    let _ = writeln!(
        out,
        "\n-- \nkdump-dma-observer {}, report --format text",
        env!("CARGO_PKG_VERSION")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_line_within_the_width() {
        let long = format!("{} {}", "word ".repeat(40), "x".repeat(300));
        let lines = wrap(&long, "  label:         ", "                  ");
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(l.len() <= WIDTH, "{} columns: {l}", l.len());
        }
        assert!(lines[0].starts_with("  label:         word"));
        let joined: String = lines.concat().chars().filter(|c| *c == 'x').collect();
        assert_eq!(joined.len(), 300, "a cut word loses nothing");
    }

    #[test]
    fn ascii_has_no_control_or_wide_characters() {
        assert_eq!(ascii("a\u{1b}[31mb\tc…µs→漢"), "a [31mb c...us->?");
    }

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(wrap("hello", "  ", "    "), vec!["  hello"]);
        assert_eq!(wrap("", "  x:", "    "), vec!["  x:"]);
    }
}
