//! Flag values with units: sizes (`16MiB`, `64KiB`, `1GB`, or plain bytes) and durations
//! (`500ms`, `10s`, `2m`, or plain seconds, as the flags took before they had units).

use std::time::Duration;

/// Size units: binary (`KiB`, 1024) and decimal (`KB`, 1000), compared case-insensitively.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("kb", 1000),
    ("mb", 1000 * 1000),
    ("gb", 1000 * 1000 * 1000),
    ("kib", 1024),
    ("mib", 1024 * 1024),
    ("gib", 1024 * 1024 * 1024),
];

/// Duration units, in seconds.
const DURATION_UNITS: &[(&str, f64)] = &[
    ("", 1.0),
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Splits `16MiB` into `("16", "MiB")`, allowing a space between them.
fn split_unit(value: &str) -> (&str, &str) {
    let value = value.trim();
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    (&value[..end], value[end..].trim_start())
}

/// A size in bytes: a whole number, optionally followed by `B`, `KB`, `MB`, `GB` (powers of
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
pub fn parse_size(value: &str) -> Result<u64, String> {
    let invalid = || {
        format!("{value:?} is not a size: use bytes or a unit, as in 65536, 64KiB, 16MiB or 1GB")
    };
    let (number, unit) = split_unit(value);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let (_, factor) = SIZE_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .ok_or_else(invalid)?;
    number
        .checked_mul(*factor)
        .ok_or_else(|| format!("{value:?} is too large"))
}

/// A duration: a number (fractions allowed), optionally followed by `ms`, `s`, `m` or `h`;
/// a plain number is seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("{value:?} is not a duration: use seconds or a unit, as in 10, 500ms, 10s or 2m")
    };
    let (number, unit) = split_unit(value);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let (_, factor) = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(invalid)?;
    Duration::try_from_secs_f64(number * factor).map_err(|_| format!("{value:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_and_decimal_units_or_plain_bytes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("16MiB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size("16mib"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("5kB"), Ok(5000));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size(" 8 KiB "), Ok(8192));
    }

    #[test]
    fn sizes_refuse_what_is_not_a_whole_number_of_a_known_unit() {
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5MiB",
            "16 megabytes",
            "16Mi",
            "1TB",
            "0x10",
            "1e6",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("20000000000GiB").is_err(), "overflow");
    }

    #[test]
    fn durations_take_units_or_plain_seconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250 ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn durations_refuse_negative_unknown_or_missing_numbers() {
        for bad in [
            "",
            "s",
            "-1",
            "-1s",
            "10 seconds",
            "10S",
            "5d",
            "1.2.3s",
            "inf",
            "NaN",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
