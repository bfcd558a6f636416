//! Human durations in config files: an integer followed by `ms`, `s`, `m`, `h`, `d` or `y`
//! (a year is 365 days), e.g. `"90d"`, `"10s"`.

use std::time::Duration;

use super::ConfigError;

/// Parses `value` for config key `key`.
pub(crate) fn parse(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| ConfigError::invalid(key, format!("`{value}` is not a duration like \"90d\" or \"10s\"")))?;
    if unit == "ms" {
        return Ok(Duration::from_millis(n));
    }
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "y" => 365 * 86_400,
        _ => return Err(ConfigError::invalid(key, format!("unknown unit in `{value}` (use ms, s, m, h, d or y)"))),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::invalid(key, format!("`{value}` is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("k", "10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("k", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("k", "90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse("k", "2y").unwrap(), Duration::from_secs(2 * 365 * 86_400));
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("root.validity", "ten days").unwrap_err();
        assert!(e.to_string().contains("root.validity"), "{e}");
        assert!(parse("k", "10w").is_err());
        assert!(parse("k", "").is_err());
    }
}
