//! Input rules shared by the API and the CLI. Each failure names the field.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Usernames are case-insensitive: stored and compared in lower case.
pub fn username(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let v = raw.trim().to_lowercase();
    if v.is_empty() || v.chars().count() > 64 {
        return Err(FieldError::new(field, "must be 1 to 64 characters"));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits, '.', '_', '-' and '@'",
        ));
    }
    Ok(v)
}

pub fn password(field: &'static str, raw: &str) -> Result<(), FieldError> {
    let n = raw.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if raw.len() > MAX_PASSWORD_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Tenant slugs: lower-case letters, digits and '-', 2 to 63 characters, starting with a letter
/// or digit (safe in URLs, file names and customer codes).
pub fn slug(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    let ok_len = (2..=63).contains(&v.len());
    let ok_chars = v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_start = v.bytes().next().is_some_and(|b| b != b'-');
    if !(ok_len && ok_chars && ok_start) {
        return Err(FieldError::new(
            field,
            "must be 2 to 63 characters of a-z, 0-9 and '-', not starting with '-'",
        ));
    }
    Ok(v.to_string())
}

/// Free-text names (display names, key names, tenant names): trimmed, 1..=max characters, no
/// control characters.
pub fn name(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_restricted() {
        assert_eq!(
            username("u", " Alice.B@Corp ").as_deref(),
            Ok("alice.b@corp")
        );
        assert_eq!(username("u", "").map_err(|e| e.field), Err("u"));
        assert!(username("u", "a b").is_err());
        assert!(username("u", &"a".repeat(65)).is_err());
        assert!(username("u", "robert'); drop table").is_err());
    }

    #[test]
    fn password_policy() {
        assert!(password("p", "short").is_err());
        assert!(password("p", "twelve chars").is_ok());
        assert!(password("p", &"x".repeat(1025)).is_err());
    }

    #[test]
    fn slugs() {
        assert!(slug("s", "acme-corp").is_ok());
        assert!(slug("s", "a").is_err());
        assert!(slug("s", "-acme").is_err());
        assert!(slug("s", "Acme").is_err());
        assert!(slug("s", "acme_corp").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(name("n", "  SOC key ", 10).as_deref(), Ok("SOC key"));
        assert!(name("n", "", 10).is_err());
        assert!(name("n", "a\u{0}b", 10).is_err());
        assert!(name("n", &"é".repeat(11), 10).is_err());
    }
}
