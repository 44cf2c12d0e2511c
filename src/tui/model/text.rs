//! Text helpers the model and the panes share: display width and one-line summaries (the
//! activity log's notes are written in the reducer).

use ratatui::text::Span;

/// Display width of a string in terminal cells.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// `text` on one line (runs of whitespace, newlines included, become one space), cut to `max`
/// cells with `…` when anything is left out.
pub fn one_line_of(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if width(&flat) <= max {
        return flat;
    }
    let mut out = String::new();
    let mut w = 0;
    for ch in flat.chars() {
        let cw = width(ch.encode_utf8(&mut [0; 4]));
        if w + cw + 1 > max {
            break;
        }
        out.push(ch);
        w += cw;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// `1 candidate`, `4 candidates`: a count with its noun, singular or plural (nouns whose plural
/// adds an `s`).
pub fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
