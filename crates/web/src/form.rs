//! URL-encoded form bodies and query strings, with repeated fields (checkboxes) kept.

/// The fields of a form, in order; a field may repeat.
#[derive(Debug, Default, Clone)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(bytes: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The query string the API takes: blank fields and the fields in `drop` left out,
    /// repeated fields joined with commas (the API's list syntax).
    pub fn api_query(&self, drop: &[&str]) -> String {
        let mut keys: Vec<&str> = Vec::new();
        for (k, v) in &self.0 {
            if !v.trim().is_empty() && !drop.contains(&k.as_str()) && !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        let mut out = form_urlencoded::Serializer::new(String::new());
        for k in keys {
            out.append_pair(k, &self.all(k).join(","));
        }
        out.finish()
    }
}

/// Percent-encodes one query value.
pub fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_query_joins_repeats_and_drops_blanks() {
        let f = FormData::parse(b"severity=high&q=&severity=critical&status=new&cursor=x");
        assert_eq!(
            f.api_query(&["cursor"]),
            "severity=high%2Ccritical&status=new"
        );
        assert_eq!(f.get("q"), None);
        assert_eq!(f.all("severity"), vec!["high", "critical"]);
    }
}
