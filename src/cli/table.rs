//! The command line's tables (`dln runs`, `dln compare`): comfy-table without borders, columns
//! as wide as their widest cell in display width (CJK and emoji count double), numbers aligned
//! right, and long cells wrapped to the terminal's width when stdout is one.

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

/// A borderless table of `header` and `rows`; the columns `right` (0-based) are aligned right.
/// Every line ends with a newline and has no trailing spaces.
pub fn plain(
    header: &[&str],
    right: &[usize],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    // Two spaces between columns, none at the line's start.
    for col in t.column_iter_mut() {
        col.set_padding((0, 2));
    }
    for &c in right {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out: String = t
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}
