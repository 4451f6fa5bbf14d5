//! When the weekly digest goes out: `KFACTOR_DIGEST_SCHEDULE` = `mon 09:00` (a weekday and
//! a UTC time) or `off`.
use chrono::Weekday;

/// A weekday and UTC time of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestSchedule {
    /// The day of the week.
    pub weekday: Weekday,
    /// Minutes after midnight UTC.
    pub minute_of_day: u32,
}

impl DigestSchedule {
    /// The default: Monday 09:00 UTC.
    pub const DEFAULT: &'static str = "mon 09:00";

    /// Parses `mon 09:00` (weekday names of three or more letters, any case; 24-hour
    /// time) or `off` (None).
    pub fn parse(s: &str) -> Result<Option<DigestSchedule>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("{s:?} is not a schedule like \"mon 09:00\" (UTC) or \"off\"");
        let (day, time) = s.split_once(char::is_whitespace).ok_or_else(bad)?;
        let weekday: Weekday = day.trim().parse().map_err(|_| bad())?;
        let (h, m) = time.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Some(DigestSchedule {
            weekday,
            minute_of_day: h * 60 + m,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_or_say_what_is_wrong() {
        assert_eq!(
            DigestSchedule::parse("mon 09:00").unwrap(),
            Some(DigestSchedule {
                weekday: Weekday::Mon,
                minute_of_day: 540
            })
        );
        assert_eq!(
            DigestSchedule::parse("Friday 17:30")
                .unwrap()
                .unwrap()
                .weekday,
            Weekday::Fri
        );
        assert_eq!(DigestSchedule::parse("OFF").unwrap(), None);
        for bad in ["mon", "mon 24:00", "someday 09:00", "mon 9", ""] {
            assert!(DigestSchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
