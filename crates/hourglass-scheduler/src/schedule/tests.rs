//! Schedule expressions: hand-computed firings (month ends, leap days, `L`, `W`, `#`), AWS's
//! validation rules, and the search checked against a minute-by-minute scan.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .expect("test time")
        .and_utc()
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// The next `n` firings after `from`.
fn firings(expr: &str, from: &str, n: usize) -> Vec<String> {
    let s = Schedule::parse(expr).expect("valid expression");
    let created = t(from);
    let mut at = created;
    let mut out = Vec::new();
    for _ in 0..n {
        match s.next_after(at, created) {
            Some(next) => {
                out.push(fmt(next));
                at = next;
            }
            None => break,
        }
    }
    out
}

#[test]
fn every_minute_and_every_five() {
    assert_eq!(
        firings("cron(* * * * ? *)", "2024-02-29 23:58", 3),
        ["2024-02-29 23:59", "2024-03-01 00:00", "2024-03-01 00:01"]
    );
    assert_eq!(
        firings("cron(0/5 * * * ? *)", "2024-01-01 00:03", 3),
        ["2024-01-01 00:05", "2024-01-01 00:10", "2024-01-01 00:15"]
    );
    assert_eq!(
        firings("cron(1/10 * * * ? *)", "2024-01-01 00:00", 3),
        ["2024-01-01 00:01", "2024-01-01 00:11", "2024-01-01 00:21"]
    );
    assert_eq!(
        firings("cron(*/20 9-10 * * ? *)", "2024-01-01 10:41", 2),
        ["2024-01-02 09:00", "2024-01-02 09:20"]
    );
}

#[test]
fn seconds_of_the_start_time_are_ignored() {
    let s = Schedule::parse("cron(* * * * ? *)").unwrap();
    let at = t("2024-01-01 00:00") + Duration::seconds(59) + Duration::nanoseconds(5);
    assert_eq!(fmt(s.next_after(at, at).unwrap()), "2024-01-01 00:01");
}

#[test]
fn month_ends_and_leap_days() {
    assert_eq!(
        firings("cron(0 0 31 * ? *)", "2024-01-31 00:00", 4),
        [
            "2024-03-31 00:00",
            "2024-05-31 00:00",
            "2024-07-31 00:00",
            "2024-08-31 00:00"
        ]
    );
    assert_eq!(
        firings("cron(0 12 29 FEB ? *)", "2023-01-01 00:00", 3),
        ["2024-02-29 12:00", "2028-02-29 12:00", "2032-02-29 12:00"]
    );
    assert_eq!(
        firings("cron(0 0 L * ? *)", "2023-12-31 00:00", 4),
        [
            "2024-01-31 00:00",
            "2024-02-29 00:00",
            "2024-03-31 00:00",
            "2024-04-30 00:00"
        ]
    );
    assert_eq!(
        firings("cron(0 0 L 2 ? 2100-2101)", "2024-01-01 00:00", 3),
        ["2100-02-28 00:00", "2101-02-28 00:00"]
    );
}

#[test]
fn weekdays_last_weekday_and_nearest_weekday() {
    // 2024-06-01 is a Saturday, 2024-06-30 a Sunday.
    assert_eq!(
        firings("cron(0 8 LW * ? 2024)", "2024-05-01 00:00", 3),
        ["2024-05-31 08:00", "2024-06-28 08:00", "2024-07-31 08:00"]
    );
    // 1W on a Saturday moves forward to Monday the 3rd, never back into May.
    assert_eq!(
        firings("cron(0 8 1W 6 ? 2024)", "2024-01-01 00:00", 1),
        ["2024-06-03 08:00"]
    );
    // 15W: 2024-06-15 is a Saturday → Friday the 14th; 2024-09-15 a Sunday → Monday the 16th.
    assert_eq!(
        firings("cron(0 8 15W 6,9 ? 2024)", "2024-01-01 00:00", 2),
        ["2024-06-14 08:00", "2024-09-16 08:00"]
    );
    // 30W in June 2024: the 30th is a Sunday and the month's last day → Friday the 28th.
    assert_eq!(
        firings("cron(0 8 30W 6 ? 2024)", "2024-01-01 00:00", 1),
        ["2024-06-28 08:00"]
    );
    // MON-FRI at 09:30, across a weekend.
    assert_eq!(
        firings("cron(30 9 ? * MON-FRI *)", "2024-03-01 10:00", 3),
        ["2024-03-04 09:30", "2024-03-05 09:30", "2024-03-06 09:30"]
    );
    assert_eq!(
        firings("cron(30 9 ? * 2-6 *)", "2024-03-01 10:00", 1),
        ["2024-03-04 09:30"]
    );
}

#[test]
fn nth_and_last_weekday_of_month() {
    // The second Tuesday (3#2) of 2024's first months: Jan 9, Feb 13, Mar 12.
    assert_eq!(
        firings("cron(0 0 ? * 3#2 *)", "2024-01-01 00:00", 3),
        ["2024-01-09 00:00", "2024-02-13 00:00", "2024-03-12 00:00"]
    );
    // The last Friday (6L): Jan 26, Feb 23, Mar 29 2024.
    assert_eq!(
        firings("cron(0 17 ? * 6L 2024)", "2024-01-01 00:00", 3),
        ["2024-01-26 17:00", "2024-02-23 17:00", "2024-03-29 17:00"]
    );
    // L alone in day-of-week is Saturday.
    assert_eq!(
        firings("cron(0 0 ? * L *)", "2024-03-01 00:00", 2),
        ["2024-03-02 00:00", "2024-03-09 00:00"]
    );
    // A fifth Monday exists only in some months: Jan 29 and Apr 29 2024.
    assert_eq!(
        firings("cron(0 0 ? * MON#5 2024)", "2024-01-01 00:00", 2),
        ["2024-01-29 00:00", "2024-04-29 00:00"]
    );
}

#[test]
fn years_bound_the_schedule() {
    assert_eq!(
        firings("cron(0 0 1 1 ? 2025,2027)", "2024-06-01 00:00", 3),
        ["2025-01-01 00:00", "2027-01-01 00:00"]
    );
    assert!(firings("cron(0 0 1 1 ? 2020)", "2024-06-01 00:00", 1).is_empty());
    assert_eq!(
        firings("cron(59 23 31 DEC ? 2199)", "2199-12-31 23:58", 2),
        ["2199-12-31 23:59"]
    );
}

#[test]
fn rates_count_from_the_creation_minute() {
    assert_eq!(
        firings("rate(1 minute)", "2024-01-01 00:00", 2),
        ["2024-01-01 00:01", "2024-01-01 00:02"]
    );
    assert_eq!(
        firings("rate(90 minutes)", "2024-01-01 23:00", 2),
        ["2024-01-02 00:30", "2024-01-02 02:00"]
    );
    assert_eq!(
        firings("rate(2 days)", "2024-02-28 12:34", 2),
        ["2024-03-01 12:34", "2024-03-03 12:34"]
    );
    let s = Schedule::parse("rate(1 hour)").unwrap();
    let created = t("2024-01-01 00:10") + Duration::seconds(42);
    // Asked about a time before the creation minute: the anchor itself.
    assert_eq!(
        fmt(s.next_after(t("2023-12-31 00:00"), created).unwrap()),
        "2024-01-01 00:10"
    );
    assert_eq!(
        fmt(s.next_after(t("2024-01-01 05:10"), created).unwrap()),
        "2024-01-01 06:10"
    );
    assert_eq!(
        fmt(s.next_after(t("2024-01-01 05:09"), created).unwrap()),
        "2024-01-01 05:10"
    );
}

#[test]
fn aws_rules_are_enforced_with_the_reason() {
    for (expr, why) in [
        ("rate(1 minutes)", "with the value 1 the unit is 'minute'"),
        (
            "rate(5 minute)",
            "with a value above 1 the unit is 'minutes'",
        ),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(5 seconds)", "minute(s), hour(s) or day(s)"),
        ("rate(5)", "expected rate(value unit)"),
        ("cron(* * * * *)", "expected 6 fields"),
        (
            "cron(* * * * * *)",
            "one of day-of-month and day-of-week must be '?'",
        ),
        ("cron(* * ? * ? *)", "cannot both be '?'"),
        (
            "cron(60 * * * ? *)",
            "minutes: '60' is not a value from 0 to 59",
        ),
        ("cron(* 24 * * ? *)", "hours: '24'"),
        ("cron(* * 0 * ? *)", "day-of-month: '0'"),
        (
            "cron(* * * 13 ? *)",
            "month: '13' is not a value from 1 to 12 or JAN-DEC",
        ),
        ("cron(* * ? * 8 *)", "day-of-week"),
        ("cron(* * * * ? 1969)", "year: '1969'"),
        ("cron(* * * * ? 2200)", "year: '2200'"),
        ("cron(5-1 * * * ? *)", "runs backwards"),
        ("cron(*/0 * * * ? *)", "invalid increment"),
        ("cron(* * ? * 3#6 *)", "1 to 5 after #"),
        ("cron(* * ? * 3#1,4#2 *)", "only item"),
        ("cron(* * 32W * ? *)", "day from 1 to 31 before W"),
        ("every 5 minutes", "expected cron("),
    ] {
        let err = Schedule::parse(expr).expect_err(expr);
        assert!(err.contains(why), "{expr}: {err}");
    }
}

#[test]
fn names_and_case_are_accepted() {
    let a = Schedule::parse("cron(0 0 ? jan-mar sun,sat *)").unwrap();
    let b = Schedule::parse("CRON(0 0 ? 1-3 1,7 *)").unwrap();
    assert_eq!(a, b);
    assert_eq!(
        Schedule::parse(" Rate(3 Hours) ").unwrap(),
        Schedule::Rate { minutes: 180 }
    );
}

/// Whether `at` (a whole minute) matches `cron`, field by field.
fn matches(cron: &Cron, at: NaiveDateTime) -> bool {
    cron.minutes & (1 << at.minute()) != 0
        && cron.hours & (1 << at.hour()) != 0
        && cron.months & (1 << at.month()) != 0
        && cron.years[(at.year() - FIRST_YEAR) as usize]
        && cron.day_matches(at.date())
}

#[test]
fn the_search_finds_what_a_minute_by_minute_scan_finds() {
    let expressions = [
        "cron(0/7 */5 * * ? *)",
        "cron(13 1,13 L * ? *)",
        "cron(0 0 LW * ? *)",
        "cron(45 23 ? * 1L *)",
        "cron(0 6 ? * 2,3 *)",
        "cron(0 6 ? * 2#1 *)",
        "cron(59 23 29 2 ? *)",
        "cron(0 12 15W * ? *)",
        "cron(30 2 1-7/3 */2 ? *)",
        "cron(0 0 ? 6-8 SAT,SUN 2024-2025)",
    ];
    for expr in expressions {
        let Schedule::Cron(cron) = Schedule::parse(expr).unwrap() else {
            panic!("{expr} is a cron expression");
        };
        let mut at = t("2023-12-25 00:00").naive_utc();
        let end = t("2025-03-10 00:00").naive_utc();
        let mut next = cron.next_after(at - Duration::minutes(1));
        let mut checked = 0;
        while at < end {
            if matches(&cron, at) {
                assert_eq!(next, Some(at), "{expr}: scan found {at}");
                next = cron.next_after(at);
                checked += 1;
            } else {
                assert!(
                    next.is_none_or(|n| n > at),
                    "{expr}: {next:?} does not match"
                );
            }
            at += Duration::minutes(1);
        }
        assert!(checked > 0, "{expr} never fired");
    }
}
