//! Text: one line per outcome, clipped, with durations and counts in words.

use std::time::Duration;

/// Control characters (line breaks, escapes) become spaces, so each outcome stays one line.
pub(super) fn one_line(text: &str) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, with an ellipsis when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(super) fn attempts_text(attempts: u32) -> String {
    if attempts == 1 { "1 attempt".into() } else { format!("{attempts} attempts") }
}

pub(super) fn or_unknown(text: &str) -> String {
    let text = one_line(text);
    if text.is_empty() { "unknown".into() } else { text }
}

pub(super) fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
