//! Key templates: literal text with `{param}` or `{param.field.field}` placeholders; `{{` and
//! `}}` stand for literal braces.

/// One piece of a template.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Text(String),
    /// `{root.fields...}`: `root` names a parameter (or `self`).
    Placeholder {
        root: String,
        fields: Vec<String>,
    },
}

/// Splits a key template into segments, or says what is wrong with it.
pub(crate) fn parse(template: &str) -> Result<Vec<Segment>, String> {
    parse_as(template, "key template")
}

/// Splits a template (`what` it is: "key template", "tag template") into segments.
pub(crate) fn parse_as(template: &str, what: &str) -> Result<Vec<Segment>, String> {
    if template.is_empty() {
        return Err(
            "the key template is empty: name the parameters that identify a result, \
                    e.g. `key = \"user:{id}\"`, or remove `key` to use all of them"
                .into(),
        );
    }
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '}' => {
                return Err(format!(
                    "unbalanced `}}` in the {what}: write `}}}}` for a literal brace"
                ));
            }
            '{' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => {
                            return Err(format!(
                                "unclosed `{{{inner}` in the {what}: close it with `}}`, \
                                 or write `{{{{` for a literal brace"
                            ));
                        }
                        Some(c) => inner.push(c),
                    }
                }
                let placeholder = placeholder(&inner, what)?;
                if !text.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                } else if let Some(Segment::Placeholder { root, .. }) = segments.last() {
                    return Err(format!(
                        "`{{{root}...}}` and `{{{inner}}}` need text between them, or their \
                         values could run together: write e.g. `{{{root}}}:{{{inner}}}`"
                    ));
                }
                segments.push(placeholder);
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

fn placeholder(inner: &str, what: &str) -> Result<Segment, String> {
    if inner.trim().is_empty() {
        return Err(format!(
            "empty placeholder `{{}}` in the {what}: name a parameter, e.g. `{{id}}`"
        ));
    }
    let mut parts = inner.split('.');
    let root = parts.next().unwrap_or_default();
    let fields: Vec<&str> = parts.collect();
    let valid_root = is_ident(root);
    let valid_fields = fields.iter().all(|f| is_ident(f) || is_index(f));
    if !valid_root || !valid_fields {
        return Err(format!(
            "`{{{inner}}}` is not a placeholder: write a parameter name, `{{id}}`, or a field \
             path, `{{req.user}}`"
        ));
    }
    Ok(Segment::Placeholder {
        root: root.into(),
        fields: fields.into_iter().map(Into::into).collect(),
    })
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && s != "_"
}

fn is_index(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph(root: &str, fields: &[&str]) -> Segment {
        Segment::Placeholder {
            root: root.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn text_placeholders_and_fields() {
        assert_eq!(
            parse("user:{id}:{req.kind.0}").unwrap(),
            vec![
                Segment::Text("user:".into()),
                ph("id", &[]),
                Segment::Text(":".into()),
                ph("req", &["kind", "0"]),
            ]
        );
        assert_eq!(
            parse("{self.tenant}").unwrap(),
            vec![ph("self", &["tenant"])]
        );
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(
            parse("{{x}}:{id}").unwrap(),
            vec![Segment::Text("{x}:".into()), ph("id", &[])]
        );
        assert_eq!(parse("all").unwrap(), vec![Segment::Text("all".into())]);
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "", "{", "}", "a{b", "{a}}", "{}", "{ }", "{a-b}", "{a.}", "{1}", "{a}{b}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("{a}}").unwrap_err().contains("unbalanced"));
        assert!(
            parse("{a}{b}")
                .unwrap_err()
                .contains("need text between them")
        );
    }
}
