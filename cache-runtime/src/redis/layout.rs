//! Redis key layout: `{prefix}{name}:{rendered key}`, documented for other services.
//!
//! - A template renders its text as written and each placeholder's `Display` text, escaped:
//!   `%` and the characters that could forge a boundary (the first character of the text
//!   between two placeholders, and `{`, `}` which decide Redis Cluster slots) become `%XX`.
//!   So `key = "{a}:{b}"` renders `a = "x:y", b = "z"` as `x%3Ay:z`, and no value can forge
//!   another's key.
//! - Without a template the key is the JSON array of the arguments, escaped the same way:
//!   `[42,"ann"]`.
//! - A key longer than 250 bytes is `{prefix}{name}:#` followed by the SHA-256 (hex) of the
//!   rendered key.
//! - The stampede lock of a key is `{<value key>}:lock`: the value key is its hash tag, so
//!   both live in the same Redis Cluster slot.

use std::fmt::{self, Display, Write as _};

use sha2::{Digest, Sha256};

/// Longest key kept as written; longer ones are digested.
pub(crate) const MAX_KEY_BYTES: usize = 250;

/// Builds the rendered part of a key (after `{prefix}{name}:`).
#[derive(Debug)]
pub struct KeyWriter {
    out: String,
    /// Where the rendered key starts in `out` (after `{prefix}{name}:`).
    start: usize,
    /// Characters escaped in values, besides `%`, `{` and `}`.
    separators: &'static str,
}

impl KeyWriter {
    /// A writer that escapes `separators` (and `%`, `{`, `}`) in values.
    pub fn new(separators: &'static str) -> Self {
        Self::after(String::new(), separators)
    }

    /// A writer whose key follows `head` (`{prefix}{name}:`), so the full key is built in one
    /// buffer.
    pub(crate) fn after(head: String, separators: &'static str) -> Self {
        KeyWriter {
            start: head.len(),
            out: head,
            separators,
        }
    }

    /// Template text, as written.
    pub fn text(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// A placeholder's value, by its `Display`, escaped.
    pub fn value(&mut self, value: &dyn Display) {
        let mut escaper = Escaper {
            out: &mut self.out,
            separators: self.separators,
        };
        // Writing to a String fails only if `Display` fails; the text so far is kept.
        let _ = write!(escaper, "{value}");
    }

    /// A key part as JSON, escaped; `Err` if it does not serialize.
    pub fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        let json = serde_json::to_string(value)?;
        let mut escaper = Escaper {
            out: &mut self.out,
            separators: self.separators,
        };
        let _ = escaper.write_str(&json);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn finish(self) -> String {
        self.out
    }

    /// The Redis key: `{head}{rendered}`, or `{head}#<SHA-256 of rendered>` when that is
    /// longer than 250 bytes.
    pub(crate) fn into_key(mut self) -> String {
        if self.out.len() <= MAX_KEY_BYTES {
            return self.out;
        }
        let digest = Sha256::digest(&self.out.as_bytes()[self.start..]);
        self.out.truncate(self.start);
        self.out.push('#');
        for b in digest {
            let _ = write!(self.out, "{b:02x}");
        }
        self.out
    }
}

struct Escaper<'a> {
    out: &'a mut String,
    separators: &'static str,
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '%' || c == '{' || c == '}' || self.separators.contains(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(self.out, "%{b:02X}");
                }
            } else {
                self.out.push(c);
            }
        }
        Ok(())
    }
}

/// The Redis key of a rendered key, digested when too long.
#[cfg(test)]
pub(crate) fn value_key(prefix: &str, name: &str, rendered: &str) -> String {
    let mut w = KeyWriter::after(format!("{prefix}{name}:"), "");
    w.text(rendered);
    w.into_key()
}

/// The stampede lock (lease) of a value key, in the same cluster slot.
pub(crate) fn lock_key(value_key: &str) -> String {
    format!("{{{value_key}}}:lock")
}

/// A `SCAN MATCH` pattern for every key under `{prefix}{name}:`, and one for their locks.
pub(crate) fn scan_patterns(prefix: &str, name: &str) -> [String; 2] {
    let mut base = String::new();
    for c in format!("{prefix}{name}:").chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            base.push('\\');
        }
        base.push(c);
    }
    [format!("{base}*"), format!("\\{{{base}*")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(separators: &'static str, parts: &[&str]) -> String {
        let mut w = KeyWriter::new(separators);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                w.text(":");
            }
            w.value(p);
        }
        w.finish()
    }

    #[test]
    fn values_cannot_forge_separators() {
        assert_eq!(render(":", &["x:y", "z"]), "x%3Ay:z");
        assert_eq!(render(":", &["x", "y:z"]), "x:y%3Az");
        assert_ne!(render(":", &["x:y", "z"]), render(":", &["x", "y:z"]));
        assert_eq!(render(":", &["50%", "{t}"]), "50%25:%7Bt%7D");
        assert_eq!(render(":", &["é"]), "é");
    }

    #[test]
    fn json_keys_are_escaped_too() {
        let mut w = KeyWriter::new("");
        w.json(&(42, "a{b}")).unwrap();
        assert_eq!(w.finish(), "[42,\"a%7Bb%7D\"]");
    }

    #[test]
    fn long_keys_are_digested_and_locks_share_the_slot() {
        assert_eq!(value_key("p:", "user", "42"), "p:user:42");
        let long = "x".repeat(300);
        let key = value_key("p:", "user", &long);
        assert!(key.starts_with("p:user:#"));
        assert_eq!(key.len(), "p:user:#".len() + 64);
        assert_eq!(key, value_key("p:", "user", &long), "digests are stable");
        assert_eq!(lock_key("p:user:42"), "{p:user:42}:lock");
    }

    #[test]
    fn scan_patterns_escape_globs() {
        assert_eq!(
            scan_patterns("a*", "f"),
            ["a\\*f:*".to_string(), "\\{a\\*f:*".to_string()]
        );
    }
}
