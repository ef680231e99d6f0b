//! Duration strings: `"90s"`, `"15m"`, `"1h30m"`, `"500ms"`, `"2d"`.

/// Milliseconds in a duration string, or a message saying what is wrong with it.
pub(crate) fn parse_ms(text: &str) -> Result<u64, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("the duration is empty".into());
    }
    let mut total: u64 = 0;
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number before `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large")?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{number}` has no unit")),
            other => return Err(format!("unknown unit `{other}`")),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(scale)
            .and_then(|ms| total.checked_add(ms))
            .ok_or("the duration is too long")?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn units_combine() {
        assert_eq!(parse_ms("90s"), Ok(90_000));
        assert_eq!(parse_ms("15m"), Ok(900_000));
        assert_eq!(parse_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_ms("1h 30m"), Ok(5_400_000));
        assert_eq!(parse_ms("2d"), Ok(172_800_000));
        assert_eq!(parse_ms("250ms"), Ok(250));
        assert_eq!(parse_ms("0s"), Ok(0));
    }

    #[test]
    fn bad_strings_say_why() {
        assert_eq!(parse_ms(""), Err("the duration is empty".into()));
        assert_eq!(parse_ms("10"), Err("`10` has no unit".into()));
        assert_eq!(parse_ms("10x"), Err("unknown unit `x`".into()));
        assert_eq!(parse_ms("h"), Err("expected a number before `h`".into()));
        assert!(parse_ms("99999999999999999999s").is_err());
        assert!(parse_ms("999999999999999d").is_err());
    }
}
