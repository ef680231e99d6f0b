//! Redis key layout: `{prefix}{name}:{rendered key}`, documented for other services.
//!
//! - A template renders its text as written and each placeholder's `Display` text, escaped:
//!   `%` and the characters that could forge a boundary become `%XX`: `:` (the segment
//!   separator of every key), `#` (which starts a digested key), `{` and `}` (which decide Redis
//!   Cluster slots) and the first character of each text between two placeholders. So
//!   `key = "{a}:{b}"` renders `a = "x:y", b = "z"` as `x%3Ay:z`, and no value can forge
//!   another's key, in its own function or in another.
//! - Injective across functions: since no value contains `:`, the segments of a key (split at
//!   `:`) are those of `{name}:{template}`. Each Redis cache claims its shape at first use
//!   ([`claim`]); a cache whose keys could equal another's (`name = "user", key =
//!   "profile:{id}"` beside `name = "user:profile", key = "{id}"`) is refused Redis: it says so
//!   once, naming both, and runs in process. `clear()` deletes only keys of its own shape
//!   ([`ClearScan`]), so clearing `acct` leaves `acct:profile:1` alone.
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
            if matches!(c, '%' | '{' | '}' | ':' | '#') || self.separators.contains(c) {
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

/// Marks a placeholder in a [`RedisSignature::LAYOUT`](super::RedisSignature::LAYOUT).
pub(crate) const HOLE: char = '\u{1}';

/// One `:`-separated segment of a key shape.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Text as written.
    Literal(String),
    /// Text with placeholders: what is known of it is its text before the first and after
    /// the last placeholder.
    Pattern { prefix: String, suffix: String },
}

impl Segment {
    fn of(text: &str) -> Segment {
        match (text.find(HOLE), text.rfind(HOLE)) {
            (Some(first), Some(last)) => Segment::Pattern {
                prefix: text[..first].to_owned(),
                suffix: text[last + HOLE.len_utf8()..].to_owned(),
            },
            _ => Segment::Literal(text.to_owned()),
        }
    }

    /// Whether a rendered segment may come from this one.
    fn matches(&self, text: &str) -> bool {
        match self {
            Segment::Literal(l) => l == text,
            Segment::Pattern { prefix, suffix } => {
                text.len() >= prefix.len() + suffix.len()
                    && text.starts_with(prefix.as_str())
                    && text.ends_with(suffix.as_str())
            }
        }
    }

    /// Whether some rendered segment may come from both.
    fn meets(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), b) => b.matches(a),
            (a, Segment::Literal(b)) => a.matches(b),
            (
                Segment::Pattern {
                    prefix: p,
                    suffix: s,
                },
                Segment::Pattern {
                    prefix: q,
                    suffix: t,
                },
            ) => {
                (p.starts_with(q.as_str()) || q.starts_with(p.as_str()))
                    && (s.ends_with(t.as_str()) || t.ends_with(s.as_str()))
            }
        }
    }
}

/// The shape of a cache's keys (after the prefix): the segments of `{name}:{layout}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyShape {
    name: String,
    layout: &'static str,
    segments: Vec<Segment>,
}

impl KeyShape {
    pub(crate) fn new(name: &str, layout: &'static str) -> KeyShape {
        let segments = format!("{name}:{layout}")
            .split(':')
            .map(Segment::of)
            .collect();
        KeyShape {
            name: name.to_owned(),
            layout,
            segments,
        }
    }

    /// Whether a key of this shape could equal a key of `other`'s.
    fn overlaps(&self, other: &KeyShape) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a.meets(b))
    }

    /// Whether `key` (without the prefix) is one of this shape's: rendered, or digested
    /// (`{name}:#<64 hex digits>`).
    pub(crate) fn owns(&self, key: &str) -> bool {
        if let Some(digest) = key
            .strip_prefix(self.name.as_str())
            .and_then(|rest| rest.strip_prefix(":#"))
        {
            return digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        }
        let mut parts = key.split(':');
        let fits = self
            .segments
            .iter()
            .all(|segment| parts.next().is_some_and(|part| segment.matches(part)));
        fits && parts.next().is_none()
    }

    /// `name = "…", key = "…"` as a user wrote it, for messages.
    fn describe(&self) -> String {
        let template = self.layout.replace(HOLE, "{…}");
        format!("`name = \"{}\", key = \"{template}\"`", self.name)
    }
}

/// The shapes of the Redis caches of this process, by their first use.
static CLAIMED: std::sync::Mutex<Vec<KeyShape>> = std::sync::Mutex::new(Vec::new());

/// Claims `shape` for a cache; `Err` (a message naming both) when another cache of this
/// process has a shape whose keys could be the same: the caller must not use Redis.
pub(crate) fn claim(shape: &KeyShape) -> Result<(), String> {
    let mut claimed = CLAIMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(other) = claimed.iter().find(|s| s.overlaps(shape)) {
        return Err(format!(
            "the Redis keys of {} could be those of {}, another cache of this process: it \
             runs in process, without Redis; give one of them another `name`",
            shape.describe(),
            other.describe()
        ));
    }
    claimed.push(shape.clone());
    Ok(())
}

/// What `clear()` deletes: the keys under `{prefix}{name}:`, and their locks, that have the
/// cache's shape (`SCAN MATCH` finds every key under the name; the shape keeps its own).
#[derive(Debug, Clone)]
pub(crate) struct ClearScan {
    pub(crate) patterns: [String; 2],
    prefix_len: usize,
    shape: KeyShape,
}

impl ClearScan {
    pub(crate) fn new(prefix: &str, shape: KeyShape) -> ClearScan {
        ClearScan {
            patterns: scan_patterns(prefix, &shape.name),
            prefix_len: prefix.len(),
            shape,
        }
    }

    /// Whether a key found by the scan is this cache's value or lock.
    pub(crate) fn owns(&self, key: &[u8]) -> bool {
        let Ok(key) = std::str::from_utf8(key) else {
            return false;
        };
        let value = match key.strip_prefix('{').and_then(|k| k.strip_suffix("}:lock")) {
            Some(value) => value,
            None => key,
        };
        value
            .get(self.prefix_len..)
            .is_some_and(|rest| self.shape.owns(rest))
    }
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

    const H: &str = "\u{1}";

    fn shape(name: &str, layout: &str) -> KeyShape {
        KeyShape::new(name, Box::leak(layout.replace("{}", H).into_boxed_str()))
    }

    /// Issue 10 (#3): two functions never share keys; `clear()` takes only its own.
    #[test]
    fn overlapping_shapes_are_found() {
        let overlapping = [
            (("user", "profile:{}"), ("user:profile", "{}")),
            (("user", "{}"), ("user", "{}")),
            (("user", "{}:{}"), ("user:profile", "{}")),
            (("a", "v{}:x"), ("a", "{}x:{}")),
            (("a", "{}"), ("a", "x{}y")),
        ];
        for ((n1, l1), (n2, l2)) in overlapping {
            let (a, b) = (shape(n1, l1), shape(n2, l2));
            assert!(a.overlaps(&b) && b.overlaps(&a), "{a:?} / {b:?}");
        }
        let apart = [
            (("acct", "{}"), ("acct:profile", "{}")),
            (("user", "profile:{}"), ("user", "settings:{}")),
            (("a", "v{}"), ("a", "w{}")),
            (("a", "{}.json"), ("a", "{}.xml")),
            (("orders", "{}"), ("users", "{}")),
        ];
        for ((n1, l1), (n2, l2)) in apart {
            let (a, b) = (shape(n1, l1), shape(n2, l2));
            assert!(!a.overlaps(&b) && !b.overlaps(&a), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn a_shape_owns_its_keys_only() {
        let acct = shape("acct", "{}");
        assert!(acct.owns("acct:1"));
        assert!(acct.owns("acct:[1,%22a%3Ab%22]"));
        assert!(!acct.owns("acct:profile:1"));
        assert!(acct.owns(&format!("acct:#{}", "ab".repeat(32))));
        assert!(!acct.owns("acct:#xyz"));
        let scan = ClearScan::new("p:", acct);
        assert!(scan.owns(b"p:acct:1"));
        assert!(scan.owns(b"{p:acct:1}:lock"));
        assert!(!scan.owns(b"{p:acct:profile:1}:lock"));
        assert!(!scan.owns(b"p:acct:profile:1"));
        assert!(!scan.owns(b"\xff"));
    }

    #[test]
    fn values_never_hold_a_segment_separator_or_a_digest_mark() {
        // `name = "user", key = "{id}"` with id "profile:42" is not `user:profile:42`.
        let mut w = KeyWriter::after("user:".into(), "");
        w.value(&"profile:42");
        assert_eq!(w.finish(), "user:profile%3A42");
        let mut w = KeyWriter::new("");
        w.value(&"#ab");
        assert_eq!(w.finish(), "%23ab");
        let mut w = KeyWriter::new("");
        w.json(&("a:b",)).unwrap();
        assert_eq!(w.finish(), "[\"a%3Ab\"]");
    }

    #[test]
    fn claims_refuse_an_overlap_and_name_both() {
        // Names of this test only: the claims are global.
        assert!(claim(&shape("claimtest", "x:{}")).is_ok());
        assert!(claim(&shape("claimtest:y", "{}")).is_ok());
        let refused = claim(&shape("claimtest:x", "{}")).unwrap_err();
        assert!(
            refused.contains("claimtest:x") && refused.contains("claimtest"),
            "{refused}"
        );
    }

    #[test]
    fn scan_patterns_escape_globs() {
        assert_eq!(
            scan_patterns("a*", "f"),
            ["a\\*f:*".to_string(), "\\{a\\*f:*".to_string()]
        );
    }
}
