//! Word wrapping and small formatting helpers: the panes wrap text themselves so they know how
//! many lines each item takes (for scrolling to it) without asking the renderer.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub use crate::tui::model::text::{one_line_of, plural, width};

/// Wrap `text` to `max` cells: at spaces where possible, inside a word when it is longer than a
/// line. Newlines are kept; an empty text gives one empty line.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        let para = para.trim_end_matches('\r');
        if para.is_empty() {
            out.push(String::new());
            continue;
        }
        let mut line = String::new();
        let mut line_w = 0;
        for word in para.split(' ') {
            let w = width(word);
            let sep = usize::from(!line.is_empty());
            if line_w + sep + w <= max {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                line_w += sep + w;
                continue;
            }
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
                line_w = 0;
            }
            // The word alone: break it if it is wider than a line.
            for ch in word.chars() {
                let cw = width(ch.encode_utf8(&mut [0; 4]));
                if line_w + cw > max && !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                    line_w = 0;
                }
                line.push(ch);
                line_w += cw;
            }
        }
        out.push(line);
    }
    out
}

/// Wrap styled pieces of text to `max` cells, breaking at spaces and newlines like [`wrap`].
pub fn wrap_styled(pieces: &[(String, Style)], max: usize) -> Vec<Line<'static>> {
    let max = max.max(1);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut line: Vec<Span<'static>> = Vec::new();
    let mut line_w = 0usize;
    // A word is a run of non-space characters, possibly in several styles.
    let mut word: Vec<(String, Style)> = Vec::new();
    let mut word_w = 0usize;
    let push_piece = |line: &mut Vec<Span<'static>>, text: &str, style: Style| match line.last_mut()
    {
        Some(last) if last.style == style => last.content.to_mut().push_str(text),
        _ => line.push(Span::styled(text.to_string(), style)),
    };
    let flush_word = |lines: &mut Vec<Line<'static>>,
                      line: &mut Vec<Span<'static>>,
                      line_w: &mut usize,
                      word: &mut Vec<(String, Style)>,
                      word_w: &mut usize| {
        if word.is_empty() {
            return;
        }
        if *line_w + *word_w > max && *line_w > 0 {
            lines.push(Line::from(std::mem::take(line)));
            *line_w = 0;
        }
        for (t, st) in word.drain(..) {
            for ch in t.chars() {
                let cw = width(ch.encode_utf8(&mut [0; 4]));
                if *line_w + cw > max && *line_w > 0 {
                    lines.push(Line::from(std::mem::take(line)));
                    *line_w = 0;
                }
                push_piece(line, ch.encode_utf8(&mut [0; 4]), st);
                *line_w += cw;
            }
        }
        *word_w = 0;
    };
    for (text, style) in pieces {
        for ch in text.chars() {
            match ch {
                '\n' => {
                    flush_word(&mut lines, &mut line, &mut line_w, &mut word, &mut word_w);
                    lines.push(Line::from(std::mem::take(&mut line)));
                    line_w = 0;
                }
                ' ' => {
                    flush_word(&mut lines, &mut line, &mut line_w, &mut word, &mut word_w);
                    if line_w < max && line_w > 0 {
                        push_piece(&mut line, " ", *style);
                        line_w += 1;
                    }
                }
                c => {
                    match word.last_mut() {
                        Some((t, st)) if st == style => t.push(c),
                        _ => word.push((c.to_string(), *style)),
                    }
                    word_w += width(c.encode_utf8(&mut [0; 4]));
                }
            }
        }
    }
    flush_word(&mut lines, &mut line, &mut line_w, &mut word, &mut word_w);
    if !line.is_empty() || lines.is_empty() {
        lines.push(Line::from(line));
    }
    lines
}

/// A shared beginning said once above a list: `label` (muted), then the first `n` bytes of
/// `first` and `…`, wrapped to `width`, two lines at most (a second `…` when cut).
pub fn shared_beginning(
    label: &str,
    first: &str,
    n: usize,
    width: usize,
    (muted, text): (Style, Style),
) -> Vec<Line<'static>> {
    let pieces = [
        (label.to_string(), muted),
        (format!("{} …", first[..n].trim_end()), text),
    ];
    let mut lines = wrap_styled(&pieces, width);
    if lines.len() > 2 {
        lines.truncate(2);
        lines[1].spans.push(Span::styled("…", muted));
    }
    lines
}

/// Rows sharing a beginning at least this long (in characters) show it once, then each row's
/// rest after `…`.
pub const SHARED_PREFIX_MIN: usize = 24;

/// The beginning every one of `texts` shares, as a byte length into each, when it is worth
/// showing once: at least two texts, at least `min_chars` characters, cut after a space so every
/// rest starts at a word.
pub fn common_prefix(texts: &[&str], min_chars: usize) -> Option<usize> {
    let (first, others) = texts.split_first()?;
    if others.is_empty() {
        return None;
    }
    let mut end = first.len();
    for t in others {
        let shared = first[..end]
            .char_indices()
            .zip(t.chars())
            .find(|((_, a), b)| a != b)
            .map(|((i, _), _)| i)
            .unwrap_or_else(|| end.min(t.len()));
        end = end.min(shared);
    }
    let shared = &first[..end];
    let cut = shared
        .char_indices()
        .rfind(|(_, c)| c.is_whitespace())
        .map(|(i, c)| i + c.len_utf8())?;
    (first[..cut].trim_end().chars().count() >= min_chars).then_some(cut)
}

/// `-1.234` with three decimals, or `—` when absent.
pub fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}"))
        .unwrap_or_else(|| "—".to_string())
}

/// A log-probability as [`num`] writes it, except the value an empty text is given (nothing to
/// score), which says so: `empty: -50`.
pub fn logp(v: Option<f64>) -> String {
    match v {
        Some(x) if x == crate::dln::ops::EMPTY_TEXT_LOGPROB => format!("empty: {x:.0}"),
        _ => num(v),
    }
}

/// `87.5%`, or `—`.
pub fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", x * 100.0))
        .unwrap_or_else(|| "—".to_string())
}

/// A horizontal bar of `cells` cells filled to `fraction` (eighth-cell resolution).
pub fn bar(fraction: f64, cells: usize) -> String {
    const PARTS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * (cells * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8 - 1]);
    }
    let used = s.chars().count();
    s.push_str(&" ".repeat(cells.saturating_sub(used)));
    s
}

pub use crate::format::{count, duration_ms};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words_and_breaks_long_ones() {
        assert_eq!(
            wrap("the quick brown fox", 9),
            vec!["the quick", "brown fox"]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 10), vec!["a", "", "b"]);
        assert_eq!(wrap("", 10), vec![""]);
    }

    #[test]
    fn styled_wrap_matches_plain_wrap() {
        let text = "the quick brown fox jumps over\nthe lazy dog";
        let plain = wrap(text, 10);
        let styled: Vec<String> = wrap_styled(&[(text.to_string(), Style::default())], 10)
            .iter()
            .map(|l| l.to_string().trim_end().to_string())
            .collect();
        assert_eq!(plain, styled);
    }

    #[test]
    fn a_long_shared_beginning_is_cut_at_a_word() {
        let a = "If you follow these instructions, do you return? Take 3 steps.";
        let b = "If you follow these instructions, do you return? Turn left.";
        let cut = common_prefix(&[a, b], 24).expect("shared");
        assert_eq!(
            &a[..cut],
            "If you follow these instructions, do you return? "
        );
        assert_eq!(&b[cut..], "Turn left.");
        // Inside a word, the cut goes back to the word's start.
        let cut = common_prefix(
            &["the same words here abcdef", "the same words here abcxyz"],
            10,
        );
        assert_eq!(cut, Some(20));
        // Too short, a single text, no texts, nothing shared, one text inside another.
        assert_eq!(common_prefix(&["Today is 2020", "Today is 2021"], 24), None);
        assert_eq!(common_prefix(&[a], 24), None);
        assert_eq!(common_prefix(&[], 24), None);
        assert_eq!(common_prefix(&[a, "x"], 1), None);
        let short = "If you follow these instructions, do";
        assert_eq!(common_prefix(&[a, short], 24), Some(34));
        // Multi-byte characters.
        assert_eq!(common_prefix(&["é é é é x", "é é é é y"], 4), Some(12));
    }

    #[test]
    fn bars_and_numbers() {
        assert_eq!(bar(1.0, 3), "███");
        assert_eq!(bar(0.0, 3), "   ");
        assert_eq!(bar(0.5, 2).chars().count(), 2);
        assert_eq!(bar(f64::NAN, 2), "  ");
        assert_eq!(duration_ms(125_000), "2m05s");
        assert_eq!(count(12_345), "12.3k");
    }
}
