//! Schedule expressions of Timestream scheduled queries: AWS's `cron(...)` and `rate(...)`, in
//! UTC, to the minute.
//!
//! Written here rather than taken from a crate: the Rust cron crates (`cron`, `croner`,
//! `saffron`) parse Quartz or Unix forms, none AWS's six fields with a year, `?`, day-of-week
//! `1-7` = `SUN-SAT`, `L`, `W` and `#` together — mapping one of them onto AWS's form would be as
//! much code as this, and less exact.
//!
//! `cron(minutes hours day-of-month month day-of-week year)`:
//!
//! | field | values | wildcards |
//! |---|---|---|
//! | minutes | 0-59 | `, - * /` |
//! | hours | 0-23 | `, - * /` |
//! | day-of-month | 1-31 | `, - * ? / L W` (`L` last day, `LW` last weekday, `15W` weekday nearest the 15th within the month) |
//! | month | 1-12 or JAN-DEC | `, - * /` |
//! | day-of-week | 1-7 or SUN-SAT | `, - * ? / L #` (`L` alone is Saturday, `6L` the month's last Friday, `3#2` its second Tuesday) |
//! | year | 1970-2199 | `, - * /` |
//!
//! Exactly one of day-of-month and day-of-week is `?` (AWS's rule). `rate(N unit)`: `unit` is
//! `minute`, `hour` or `day`, singular when N is 1 and plural otherwise (AWS's rule); runs fall at
//! the creation time, truncated to the minute, plus whole multiples of the rate.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc, Weekday};

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(N unit)`: every `minutes` minutes.
    Rate {
        minutes: i64,
    },
    Cron(Box<Cron>),
}

/// The six fields of a `cron(...)` expression as sets of the values they match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    day_of_month: Option<DayOfMonth>,
    months: u16,
    day_of_week: Option<DayOfWeek>,
    /// Bit `y - 1970` for each year matched.
    years: Vec<bool>,
}

/// What the day-of-month field matches (`None` in [`Cron`] is `?`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DayOfMonth {
    /// Bit d for day d.
    days: u32,
    last: bool,
    last_weekday: bool,
    nearest_weekday: Vec<u32>,
}

/// What the day-of-week field matches (`None` in [`Cron`] is `?`); days 1 (Sunday) to 7.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DayOfWeek {
    /// Bit d for weekday d.
    days: u8,
    /// `dL`: the month's last weekday d.
    last_of_month: Vec<u8>,
    /// `d#k`: the month's k-th weekday d.
    nth: Vec<(u8, u32)>,
}

const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses `cron(...)` or `rate(...)`; the error says which part is wrong and why.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        let text = expression.trim();
        let body = |prefix: &str| {
            text.get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .and_then(|_| text[prefix.len()..].strip_suffix(')'))
        };
        if let Some(inner) = body("rate(") {
            return parse_rate(inner.trim());
        }
        if let Some(inner) = body("cron(") {
            return Cron::parse(inner.trim()).map(|c| Schedule::Cron(Box::new(c)));
        }
        Err(format!(
            "invalid schedule expression '{expression}': expected cron(minutes hours day-of-month \
             month day-of-week year) or rate(value unit)"
        ))
    }

    /// The first time the schedule fires strictly after `after`, for a scheduled query created
    /// at `created` (the anchor of `rate`); `None` past the year 2199.
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate { minutes } => {
                let anchor = truncate_to_minute(created);
                let step = Duration::minutes(*minutes);
                if after < anchor {
                    return Some(anchor);
                }
                let since = (after - anchor).num_minutes();
                let k = since / minutes + 1;
                Some(anchor + step * i32::try_from(k).ok()?)
            }
            Schedule::Cron(cron) => cron.next_after(after.naive_utc()).map(|t| t.and_utc()),
        }
    }
}

fn truncate_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

fn parse_rate(inner: &str) -> Result<Schedule, String> {
    let bad = |why: &str| format!("invalid rate expression 'rate({inner})': {why}");
    let mut parts = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected rate(value unit), e.g. rate(5 minutes)"));
    };
    let value: i64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| bad("the value must be a positive whole number"))?;
    let unit = unit.to_ascii_lowercase();
    let (singular, per) = match unit.trim_end_matches('s') {
        "minute" => ("minute", 1),
        "hour" => ("hour", 60),
        "day" => ("day", 24 * 60),
        _ => return Err(bad("the unit must be minute(s), hour(s) or day(s)")),
    };
    let plural = unit.ends_with('s');
    if value == 1 && plural {
        return Err(bad(&format!("with the value 1 the unit is '{singular}'")));
    }
    if value > 1 && !plural {
        return Err(bad(&format!(
            "with a value above 1 the unit is '{singular}s'"
        )));
    }
    let minutes = value
        .checked_mul(per)
        .filter(|m| *m <= 366 * 24 * 60 * 300)
        .ok_or_else(|| bad("the rate is too long"))?;
    Ok(Schedule::Rate { minutes })
}

/// One comma-separated field's items parsed into a bit set over `lo..=hi`.
fn parse_set(
    field: &str,
    text: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    name_base: u32,
) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (hi + 1) as usize];
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{field}: invalid increment '{s}' in '{item}'"))?;
                (r, Some(step))
            }
            None => (item, None),
        };
        let value = |v: &str| -> Result<u32, String> {
            let upper = v.to_ascii_uppercase();
            if let Some(i) = names.iter().position(|n| *n == upper) {
                return Ok(i as u32 + name_base);
            }
            v.parse::<u32>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{field}: '{v}' is not a value from {lo} to {hi}{}",
                        named(names)
                    )
                })
        };
        let (start, end) = match range {
            "*" => (lo, hi),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `5/15`: from 5 to the end in steps.
                None if step.is_some() => (value(range)?, hi),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if start > end {
            return Err(format!(
                "{field}: the range '{range}' runs backwards ({start} > {end})"
            ));
        }
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn named(names: &[&str]) -> String {
    match (names.first(), names.last()) {
        (Some(a), Some(b)) => format!(" or {a}-{b}"),
        _ => String::new(),
    }
}

fn mask<T: From<u8> + std::ops::BitOr<Output = T> + std::ops::Shl<u32, Output = T>>(
    set: &[bool],
) -> T {
    set.iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .fold(T::from(0), |m, (i, _)| m | (T::from(1) << i as u32))
}

impl Cron {
    /// Parses the six fields between `cron(` and `)`.
    pub fn parse(fields: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = fields.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = parts[..] else {
            return Err(format!(
                "invalid cron expression 'cron({fields})': expected 6 fields (minutes hours \
                 day-of-month month day-of-week year), found {}",
                parts.len()
            ));
        };
        let wrap = |e: String| format!("invalid cron expression 'cron({fields})': {e}");
        let minutes = mask::<u64>(&parse_set("minutes", minutes, 0, 59, &[], 0).map_err(wrap)?);
        let hours = mask::<u32>(&parse_set("hours", hours, 0, 23, &[], 0).map_err(wrap)?);
        let months = mask::<u16>(&parse_set("month", month, 1, 12, &MONTHS, 1).map_err(wrap)?);
        let years = parse_set("year", year, FIRST_YEAR as u32, LAST_YEAR as u32, &[], 0)
            .map_err(wrap)?
            .split_off(FIRST_YEAR as usize);
        let day_of_month = match dom {
            "?" => None,
            _ => Some(parse_day_of_month(dom).map_err(wrap)?),
        };
        let day_of_week = match dow {
            "?" => None,
            _ => Some(parse_day_of_week(dow).map_err(wrap)?),
        };
        match (&day_of_month, &day_of_week) {
            (None, None) => Err(wrap(
                "day-of-month and day-of-week cannot both be '?'".to_string(),
            )),
            (Some(_), Some(_)) => Err(wrap(
                "one of day-of-month and day-of-week must be '?' (a value or '*' in one needs '?' \
                 in the other)"
                    .to_string(),
            )),
            _ => Ok(Cron {
                minutes,
                hours,
                day_of_month,
                months,
                day_of_week,
                years,
            }),
        }
    }

    /// The first matching minute strictly after `after`.
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut day = start.date();
        let mut first_day = true;
        loop {
            let year = day.year();
            if year > LAST_YEAR {
                return None;
            }
            if year < FIRST_YEAR || !self.years[(year - FIRST_YEAR) as usize] {
                day = NaiveDate::from_ymd_opt(year + 1, 1, 1)?;
                first_day = false;
                continue;
            }
            if self.months & (1 << day.month()) == 0 {
                day = first_of_next_month(day)?;
                first_day = false;
                continue;
            }
            if self.day_matches(day) {
                let from = if first_day {
                    start.time()
                } else {
                    chrono::NaiveTime::MIN
                };
                if let Some(t) = self.first_time_from(from.hour(), from.minute()) {
                    return Some(day.and_time(t));
                }
            }
            day = day.succ_opt()?;
            first_day = false;
        }
    }

    /// The first (hour, minute) of a matching day at or after `hour:minute`.
    fn first_time_from(&self, hour: u32, minute: u32) -> Option<chrono::NaiveTime> {
        for h in hour..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            let m0 = if h == hour { minute } else { 0 };
            if let Some(m) = (m0..60).find(|m| self.minutes & (1 << m) != 0) {
                return chrono::NaiveTime::from_hms_opt(h, m, 0);
            }
        }
        None
    }

    fn day_matches(&self, day: NaiveDate) -> bool {
        if let Some(dom) = &self.day_of_month {
            let last = last_day_of_month(day);
            let d = day.day();
            return dom.days & (1 << d) != 0
                || (dom.last && d == last.day())
                || (dom.last_weekday && day == weekday_on_or_before(last))
                || dom
                    .nearest_weekday
                    .iter()
                    .any(|n| nearest_weekday(day, *n) == Some(day));
        }
        if let Some(dow) = &self.day_of_week {
            let wd = aws_weekday(day.weekday());
            let last = last_day_of_month(day);
            return dow.days & (1 << wd) != 0
                || (dow.last_of_month.contains(&wd) && day + Duration::days(7) > last)
                || dow
                    .nth
                    .iter()
                    .any(|(w, k)| *w == wd && (day.day() - 1) / 7 + 1 == *k);
        }
        false
    }
}

fn parse_day_of_month(text: &str) -> Result<DayOfMonth, String> {
    let mut dom = DayOfMonth::default();
    let mut plain = Vec::new();
    for item in text.split(',') {
        match item.to_ascii_uppercase().as_str() {
            "L" => dom.last = true,
            "LW" => dom.last_weekday = true,
            w if w.ends_with('W') => {
                let n: u32 = w[..w.len() - 1]
                    .parse()
                    .ok()
                    .filter(|n| (1..=31).contains(n))
                    .ok_or_else(|| {
                        format!("day-of-month: '{item}' needs a day from 1 to 31 before W")
                    })?;
                dom.nearest_weekday.push(n);
            }
            _ => plain.push(item),
        }
    }
    if !plain.is_empty() {
        dom.days = mask::<u32>(&parse_set("day-of-month", &plain.join(","), 1, 31, &[], 0)?);
    }
    Ok(dom)
}

fn parse_day_of_week(text: &str) -> Result<DayOfWeek, String> {
    let mut dow = DayOfWeek::default();
    let mut plain = Vec::new();
    let weekday = |v: &str, item: &str| -> Result<u8, String> {
        let upper = v.to_ascii_uppercase();
        if let Some(i) = WEEKDAYS.iter().position(|n| *n == upper) {
            return Ok(i as u8 + 1);
        }
        v.parse::<u8>()
            .ok()
            .filter(|n| (1..=7).contains(n))
            .ok_or_else(|| format!("day-of-week: '{item}' needs a day from 1 to 7 or SUN-SAT"))
    };
    let items: Vec<&str> = text.split(',').collect();
    for item in &items {
        let upper = item.to_ascii_uppercase();
        if upper == "L" {
            dow.days |= 1 << 7;
        } else if let Some((w, k)) = upper.split_once('#') {
            if items.len() > 1 {
                return Err(format!(
                    "day-of-week: '{item}' with '#' must be the field's only item"
                ));
            }
            let k: u32 = k
                .parse()
                .ok()
                .filter(|k| (1..=5).contains(k))
                .ok_or_else(|| format!("day-of-week: '{item}' needs 1 to 5 after #"))?;
            dow.nth.push((weekday(w, item)?, k));
        } else if upper.len() > 1 && upper.ends_with('L') {
            dow.last_of_month
                .push(weekday(&upper[..upper.len() - 1], item)?);
        } else {
            plain.push(*item);
        }
    }
    if !plain.is_empty() {
        dow.days |= mask::<u8>(&parse_set(
            "day-of-week",
            &plain.join(","),
            1,
            7,
            &WEEKDAYS,
            1,
        )?);
    }
    Ok(dow)
}

/// AWS's day-of-week number: 1 Sunday .. 7 Saturday.
fn aws_weekday(w: Weekday) -> u8 {
    w.number_from_sunday() as u8
}

fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    }
}

fn last_day_of_month(day: NaiveDate) -> NaiveDate {
    first_of_next_month(day)
        .and_then(|d| d.pred_opt())
        .unwrap_or(day)
}

fn weekday_on_or_before(day: NaiveDate) -> NaiveDate {
    match day.weekday() {
        Weekday::Sat => day - Duration::days(1),
        Weekday::Sun => day - Duration::days(2),
        _ => day,
    }
}

/// The weekday nearest day `n` of `day`'s month, without leaving the month (Quartz's `nW`);
/// `None` when the month has no day `n`.
fn nearest_weekday(day: NaiveDate, n: u32) -> Option<NaiveDate> {
    let target = day.with_day(n)?;
    let last = last_day_of_month(day);
    Some(match target.weekday() {
        Weekday::Sat if n == 1 => target + Duration::days(2),
        Weekday::Sat => target - Duration::days(1),
        Weekday::Sun if target == last => target - Duration::days(2),
        Weekday::Sun => target + Duration::days(1),
        _ => target,
    })
}

#[cfg(test)]
mod tests;
