//! HTTP-dates (RFC 9110 §5.6.7) as a cache reads them in `Date`, `Expires` and
//! `Last-Modified`: the IMF-fixdate, the obsolete RFC 850 and asctime forms, each in its exact
//! grammar, with letter case ignored and a weekday that disagrees with the date tolerated —
//! the leniency the RFC asks of recipients, and no more: anything else is not a date.

use std::time::{Duration, SystemTime};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The time `text` names, or `None` when it is not an HTTP-date.
pub fn parse(text: &str) -> Option<SystemTime> {
    let text = text.trim().to_ascii_lowercase();
    imf_fixdate(&text)
        .or_else(|| rfc850(&text))
        .or_else(|| asctime(&text))
        .and_then(Civil::to_system_time)
}

/// A calendar date and time of day, in GMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(text: &str) -> Option<Civil> {
    let (day_name, rest) = text.split_once(", ")?;
    if !DAYS.contains(&day_name) {
        return None;
    }
    let [day, month, year, time, zone] = fields(rest, ' ')?;
    (zone == "gmt").then_some(())?;
    civil(number(year, 4)?, month, number(day, 2)?, time)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year more than 50 years ahead is taken to
/// be in the past century (RFC 9110 §5.6.7).
fn rfc850(text: &str) -> Option<Civil> {
    let (day_name, rest) = text.split_once(", ")?;
    if !LONG_DAYS.contains(&day_name) {
        return None;
    }
    let [date, time, zone] = fields(rest, ' ')?;
    (zone == "gmt").then_some(())?;
    let [day, month, year] = fields(date, '-')?;
    let year = number(year, 2)?;
    let year = if year > 50 { 1900 + year } else { 2000 + year };
    civil(year, month, number(day, 2)?, time)
}

/// `Sun Nov  6 08:49:37 1994`: the day is two digits, or a space and one digit.
fn asctime(text: &str) -> Option<Civil> {
    let (day_name, rest) = text.split_at_checked(4)?;
    if !day_name
        .strip_suffix(' ')
        .is_some_and(|name| DAYS.contains(&name))
    {
        return None;
    }
    let (month, rest) = rest.split_at_checked(4)?;
    let month = month.strip_suffix(' ')?;
    let (day, rest) = rest.split_at_checked(3)?;
    let day = day.strip_suffix(' ')?;
    let day = match day.strip_prefix(' ') {
        Some(one_digit) => number(one_digit, 1)?,
        None => number(day, 2)?,
    };
    let [time, year] = fields(rest, ' ')?;
    civil(number(year, 4)?, month, day, time)
}

fn civil(year: i64, month: &str, day: i64, time: &str) -> Option<Civil> {
    let month = MONTHS.iter().position(|name| *name == month)? as u32 + 1;
    let [hour, minute, second] = fields(time, ':')?;
    let (hour, minute, second) = (number(hour, 2)?, number(minute, 2)?, number(second, 2)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // 60 seconds: a leap second, as the RFC's grammar allows.
    let valid = (1..=month_days).contains(&day) && hour < 24 && minute < 60 && second <= 60;
    valid.then(|| Civil {
        year,
        month,
        day: day as u32,
        hour: hour as u32,
        minute: minute as u32,
        second: second.min(59) as u32,
    })
}

impl Civil {
    fn to_system_time(self) -> Option<SystemTime> {
        let seconds = days_from_epoch(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        let seconds = u64::try_from(seconds).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar.
fn days_from_epoch(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March, so that the leap day ends a year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Exactly `N` pieces of `text` split at `separator`, none empty.
fn fields<const N: usize>(text: &str, separator: char) -> Option<[&str; N]> {
    let pieces: Vec<&str> = text.split(separator).collect();
    let pieces: [&str; N] = pieces.try_into().ok()?;
    pieces
        .iter()
        .all(|piece| !piece.is_empty())
        .then_some(pieces)
}

/// `text` as a number of exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<i64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn the_three_forms_name_the_same_time() {
        let expected = at(784_111_777);
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(parse(" Sun, 06 Nov 1994 08:49:37 GMT "), expected);
    }

    #[test]
    fn agrees_with_a_strict_parser_on_every_day_of_many_years() {
        let mut time = SystemTime::UNIX_EPOCH;
        let step = Duration::from_secs(86_400 + 3_607);
        while time < SystemTime::UNIX_EPOCH + Duration::from_secs(4_200_000_000) {
            let text = httpdate::fmt_http_date(time);
            assert_eq!(parse(&text), Some(time), "{text}");
            time += step;
        }
    }

    #[test]
    fn letter_case_and_a_wrong_weekday_are_tolerated() {
        let expected = parse("Thu, 18 Aug 2050 02:01:18 GMT");
        assert!(expected.is_some());
        for text in [
            "THU, 18 Aug 2050 02:01:18 GMT",
            "Thu, 18 AUG 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 gMT",
            "Mon, 18 Aug 2050 02:01:18 GMT",
        ] {
            assert_eq!(parse(text), expected, "{text}");
        }
        assert_eq!(
            parse("Thu Aug  8 02:01:18 2050"),
            parse("Mon, 08 Aug 2050 02:01:18 GMT")
        );
        assert_eq!(
            parse("Thursday, 18-Aug-50 02:01:18 GMT"),
            expected,
            "a two-digit year up to 50 is this century"
        );
        assert_eq!(
            parse("Thursday, 18-Aug-94 02:01:18 GMT"),
            parse("Thu, 18 Aug 1994 02:01:18 GMT")
        );
    }

    #[test]
    fn anything_outside_the_grammar_is_not_a_date() {
        for text in [
            "",
            "0",
            "yesterday",
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18 AEST",
            "Thu, 18 Aug 50 02:01:18 GMT",
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02.01.18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "Thu, 31 Jun 2050 02:01:18 GMT",
            "Thu, 29 Feb 2100 02:01:18 GMT",
            "Thu, 18 Aug 2050 24:00:00 GMT",
            "Xyz, 18 Aug 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 GMT, Fri, 19 Aug 2050 02:01:18 GMT",
            "Thu Aug 8 02:01:18 2050",
            "Thu, 18 Aug 1969 02:01:18 GMT",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        assert_eq!(
            parse("Tue, 29 Feb 2000 00:00:00 GMT"),
            parse("Tue, 01 Mar 2000 00:00:00 GMT").map(|t| t - Duration::from_secs(86_400))
        );
    }
}
