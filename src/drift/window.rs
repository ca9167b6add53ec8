//! `--window`: the size of the windows the current data is split into, by
//! time (`1d`, `6h`, `30m`, `1w`, calendar-aligned in UTC) or by row count
//! (`10000rows`), and how a window is named in the report.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Calendar-aligned windows of this many microseconds (UTC).
    Time(i64),
    Rows(usize),
}

impl FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim().to_ascii_lowercase();
        let bad = || {
            format!("bad window '{s}': expected a duration such as 1d, 6h, 30m, 1w, or a row count such as 10000rows")
        };
        if let Some(n) = text.strip_suffix("rows") {
            let n: usize = n.trim().parse().map_err(|_| bad())?;
            return if n == 0 {
                Err(bad())
            } else {
                Ok(Window::Rows(n))
            };
        }
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = text.split_at(split);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let unit_micros: i64 = match unit {
            "s" => 1_000_000,
            "m" | "min" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            "w" => 7 * 86_400_000_000,
            _ => return Err(bad()),
        };
        if n <= 0 {
            return Err(bad());
        }
        Ok(Window::Time(n * unit_micros))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Window::Rows(n) => write!(f, "{n}rows"),
            Window::Time(us) => {
                for (unit, size) in [
                    ("w", 7 * 86_400_000_000),
                    ("d", 86_400_000_000),
                    ("h", 3_600_000_000),
                    ("m", 60_000_000),
                ] {
                    if us % size == 0 {
                        return write!(f, "{}{unit}", us / size);
                    }
                }
                write!(f, "{}s", us / 1_000_000)
            }
        }
    }
}

/// A window start as an ISO date, with the time when windows are shorter
/// than a day.
pub fn format_micros(micros: i64, width: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if width % 86_400_000_000 == 0 {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_row_counts() {
        assert_eq!(
            "1d".parse::<Window>().unwrap(),
            Window::Time(86_400_000_000)
        );
        assert_eq!(
            "6h".parse::<Window>().unwrap(),
            Window::Time(6 * 3_600_000_000)
        );
        assert_eq!("10000rows".parse::<Window>().unwrap(), Window::Rows(10_000));
        assert!("0d".parse::<Window>().is_err());
        assert!("fortnight".parse::<Window>().is_err());
    }

    #[test]
    fn windows_print_as_written() {
        for text in ["1d", "6h", "30m", "1w", "90s", "10000rows"] {
            assert_eq!(text.parse::<Window>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn dates_print_in_utc() {
        assert_eq!(format_micros(0, 86_400_000_000), "1970-01-01");
        // 2026-03-01T06:00Z
        let t = 1_772_344_800_000_000;
        assert_eq!(format_micros(t, 3_600_000_000), "2026-03-01T06:00Z");
    }
}
