//! Refanging: turning defanged indicators (`hxxp://evil[.]com`) back into their real form.

use std::borrow::Cow;

/// Defang markers and their replacements, matched ASCII-case-insensitively. Longer markers that
/// share a prefix with shorter ones come first.
const MARKERS: &[(&[u8], &str)] = &[
    (b"[://]", "://"),
    (b"[:]", ":"),
    (b"[.]", "."),
    (b"(.)", "."),
    (b"{.}", "."),
    (b"[dot]", "."),
    (b"(dot)", "."),
    (b"{dot}", "."),
    (b"[@]", "@"),
    (b"[at]", "@"),
    (b"(at)", "@"),
    (b"hxxps", "https"),
    (b"hxxp", "http"),
    (b"fxp://", "ftp://"),
];

/// Refangs `s`: `hxxp`/`hxxps` → `http`/`https`, `fxp://` → `ftp://`, `[.]` `(.)` `{.}` `[dot]`
/// `(dot)` `{dot}` → `.`, `[:]` → `:`, `[://]` → `://`, `[at]` `(at)` `[@]` → `@` (markers are
/// case-insensitive). Borrows when there is nothing to change.
pub fn refang(s: &str) -> Cow<'_, str> {
    refang_tracked(s).0
}

/// Like [`refang`], also returning the byte offsets *in the output* where a replacement was made,
/// in increasing order (empty when the input is returned borrowed). The extractor uses them to
/// recognise indicators that were deliberately defanged.
pub(crate) fn refang_tracked(s: &str) -> (Cow<'_, str>, Vec<usize>) {
    let b = s.as_bytes();
    let Some(first) = find_marker(b, 0) else {
        return (Cow::Borrowed(s), Vec::new());
    };
    let mut out = String::with_capacity(s.len());
    let mut spots = Vec::new();
    let mut copied = 0;
    let mut next = Some(first);
    while let Some((at, len, repl)) = next {
        // Markers are ASCII, so `at` and `at + len` are char boundaries.
        out.push_str(&s[copied..at]);
        spots.push(out.len());
        out.push_str(repl);
        copied = at + len;
        next = find_marker(b, copied);
    }
    out.push_str(&s[copied..]);
    (Cow::Owned(out), spots)
}

/// The next marker at or after `from`: (offset, marker length, replacement).
fn find_marker(b: &[u8], from: usize) -> Option<(usize, usize, &'static str)> {
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'[' | b'(' | b'{' | b'h' | b'H' | b'f' | b'F') {
            for (marker, repl) in MARKERS {
                if marker[0].eq_ignore_ascii_case(&c)
                    && b.len() - i >= marker.len()
                    && b[i..i + marker.len()].eq_ignore_ascii_case(marker)
                {
                    return Some((i, marker.len(), repl));
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refangs_all_markers() {
        assert_eq!(refang("hxxp[://]evil[.]com"), "http://evil.com");
        assert_eq!(refang("HXXPS://evil(.)co{.}uk"), "https://evil.co.uk");
        assert_eq!(refang("user[at]evil[dot]com"), "user@evil.com");
        assert_eq!(refang("user(at)evil(DOT)com"), "user@evil.com");
        assert_eq!(refang("user[@]evil.com"), "user@evil.com");
        assert_eq!(refang("hxxp[:]//1.2.3[.]4"), "http://1.2.3.4");
        assert_eq!(
            refang("fxp://files[.]example[.]net"),
            "ftp://files.example.net"
        );
    }

    #[test]
    fn borrows_when_clean() {
        assert!(matches!(
            refang("plain text with (brackets) [x]"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(refang("höhe — ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn tracks_replacement_offsets() {
        let (out, spots) = refang_tracked("a[.]b[.]c");
        assert_eq!(out, "a.b.c");
        assert_eq!(spots, vec![1, 3]);
    }

    #[test]
    fn multibyte_text_around_markers() {
        assert_eq!(refang("é[.]ü hxxp"), "é.ü http");
    }
}
