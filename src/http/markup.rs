//! Text for XML and HTML, written by hand where a document is small and
//! flat (Open311's XML answers, the assessment's printable report).

/// Text as XML 1.0 character data: `& < > " '` as entities; the characters
/// XML 1.0 does not allow at all (controls other than tab, newline and
/// carriage return; U+FFFE, U+FFFF) left out.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
