//! `@mentions` in comments: `@username` where a username is what analysts log in with
//! (letters, digits, `.`, `_`, `-`). An `@` inside a word (an e-mail address) is not a mention.

/// The distinct usernames mentioned in `text`, in order of first appearance, lower-cased.
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' && (i == 0 || !is_name(bytes[i - 1])) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && is_name(bytes[end]) {
                end += 1;
            }
            // A trailing dot ends the sentence, not the name.
            let mut name_end = end;
            while name_end > start && bytes[name_end - 1] == b'.' {
                name_end -= 1;
            }
            if name_end > start && name_end - start <= 64 {
                let name = text[start..name_end].to_ascii_lowercase();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mentioned_usernames;

    #[test]
    fn finds_mentions_and_skips_email_addresses() {
        assert_eq!(
            mentioned_usernames("@alice please check with @Bob.Smith. cc bob@example.com @alice"),
            vec!["alice", "bob.smith"]
        );
        assert!(mentioned_usernames("no mentions @ all").is_empty());
        assert_eq!(mentioned_usernames("(@carol)"), vec!["carol"]);
        assert_eq!(mentioned_usernames("é@dave"), vec!["dave"]);
    }
}
