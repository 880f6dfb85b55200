//! Text for people: untrusted strings made safe to print.
//!
//! Paths, host names, tags, object names and error details can come from a manifest, a
//! commit or a store listing — that is, from whoever could write to a store or held the
//! write key. Printed raw, a newline forges listing lines and an escape sequence reaches
//! the operator's terminal. Every human output passes them through [`escape`] (or
//! [`escape_bytes`]); JSON output stays exact.

use std::borrow::Cow;
use std::fmt::Write;

/// Does `c` need escaping: a control character (C0, DEL, C1), a backslash (so that escapes
/// are unambiguous), or a bidirectional-override mark (which can make text read as other
/// text)?
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with control characters as `\xNN` (or `\u{NNNN}`) and backslashes doubled, like
/// `ls -b`.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s);
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Raw bytes (a path that need not be UTF-8) as escaped text: invalid UTF-8 bytes as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// A Markdown table cell: control characters escaped, no `|` or backtick left to break
/// the table or open a code span.
pub fn md_cell(s: &str) -> String {
    escape(s).replace('|', "\\|").replace('`', "'")
}

/// HTML text: control characters escaped, then `&`, `<`, `>`, `"` as entities.
pub fn html(s: &str) -> String {
    escape(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert!(matches!(escape("exports/customers.csv"), Cow::Borrowed(_)));
        assert_eq!(escape("佐藤 健"), "佐藤 健");
        assert_eq!(escape("a\nb"), "a\\x0ab");
        assert_eq!(escape("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(escape("\u{9b}2J"), "\\x9b2J");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape_bytes(b"caf\xe9\n"), "caf\\xe9\\x0a");
        let printed = escape_bytes(b"x\n-rw-r--r-- forged line");
        assert!(!printed.contains('\n'));
    }
}
