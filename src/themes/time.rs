//! Themes over time: every theme's passages per period of its documents' dates, whether it rises
//! or falls in the latest period against its own history, and when it first appeared.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

/// A theme rises when its share of the latest period's passages is this many standard errors
/// above its share of all earlier periods' (a two-proportion z-test; 3 is about p < 0.003
/// two-sided) ...
pub const TREND_Z: f64 = 3.0;
/// ... and at least this many times it (or, falling, at most its inverse): a tiny change in a
/// huge archive is significant without being news. Doubling or halving: a new theme that takes
/// a third of the latest period dilutes every other share to about two thirds of before
/// (THUCNews' growth plan: 0.68 to 0.70), which a ratio of 1.5 would sit right next to.
pub const TREND_RATIO: f64 = 2.0;
/// A theme first appears on the date by which this share of its dated passages had appeared, so
/// that one stray early passage does not date it.
const FIRST_SHARE: f64 = 0.05;

/// How dates are grouped: by the span of the dates, up to 120 days by ISO week, up to three
/// years by month, beyond by year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodUnit {
    Week,
    Month,
    Year,
}

impl PeriodUnit {
    fn for_span(first: NaiveDate, last: NaiveDate) -> Self {
        let days = (last - first).num_days();
        if days <= 120 {
            Self::Week
        } else if days <= 1096 {
            Self::Month
        } else {
            Self::Year
        }
    }

    /// "2025-W45", "2025-11", "2025".
    fn label(self, date: NaiveDate) -> String {
        match self {
            Self::Week => {
                let week = date.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Self::Month => format!("{}-{:02}", date.year(), date.month()),
            Self::Year => date.year().to_string(),
        }
    }
}

/// One period of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub period: String,
    /// Its first date that documents carry.
    pub from: String,
    pub documents: usize,
    pub passages: usize,
}

/// The periods of a collection's dates.
#[derive(Debug, Clone, Serialize)]
pub struct Periods {
    pub unit: PeriodUnit,
    pub periods: Vec<Period>,
}

/// How a theme moved in the latest period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Rising,
    Falling,
    Steady,
}

/// A theme's latest period against its history (see [`TREND_Z`] and [`TREND_RATIO`]).
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub direction: Direction,
    /// Its share of the latest period's passages.
    pub latest_share: f32,
    /// Its share of all earlier periods' passages.
    pub earlier_share: f32,
    /// The two-proportion z statistic (latest minus earlier).
    pub z: f32,
}

/// A date at the start of a document's date field ("2025-11-03", "2025-11", "2025").
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let head = |n: usize| text.get(..n);
    head(10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .or_else(|| head(7).and_then(|d| NaiveDate::parse_from_str(&format!("{d}-01"), "%Y-%m-%d").ok()))
        .or_else(|| {
            let year: i32 = head(4)?.parse().ok()?;
            (text.len() == 4).then(|| NaiveDate::from_ymd_opt(year, 1, 1)).flatten()
        })
}

/// What [`over_time`] finds.
pub struct OverTime {
    pub periods: Option<Periods>,
    /// Per theme, its passages in each period.
    pub counts: Vec<Vec<usize>>,
    pub trends: Vec<Option<Trend>>,
    /// Per theme, the date it first appeared (see [`FIRST_SHARE`]).
    pub first_dates: Vec<Option<String>>,
}

/// Periods of the passages' dates (`dates[row]`, with `documents[row]` the document's number),
/// and every theme's counts, trend and first date from its passages (`members[theme]`).
pub fn over_time(dates: &[Option<NaiveDate>], documents: &[usize], members: &[Vec<usize>]) -> OverTime {
    let dated: Vec<NaiveDate> = dates.iter().flatten().copied().collect();
    let (Some(&first), Some(&last)) = (dated.iter().min(), dated.iter().max()) else {
        return OverTime {
            periods: None,
            counts: vec![Vec::new(); members.len()],
            trends: vec![None; members.len()],
            first_dates: vec![None; members.len()],
        };
    };
    let unit = PeriodUnit::for_span(first, last);
    let mut labels: Vec<String> = dated.iter().map(|&d| unit.label(d)).collect();
    labels.sort();
    labels.dedup();
    let period_of: Vec<Option<usize>> = dates
        .iter()
        .map(|d| d.map(|d| labels.binary_search(&unit.label(d)).expect("every label listed")))
        .collect();
    let mut periods: Vec<Period> = labels
        .iter()
        .map(|label| Period {
            period: label.clone(),
            from: String::new(),
            documents: 0,
            passages: 0,
        })
        .collect();
    let mut from: Vec<Option<NaiveDate>> = vec![None; labels.len()];
    let mut seen_documents = std::collections::HashSet::new();
    for (row, p) in period_of.iter().enumerate() {
        if let Some(p) = *p {
            periods[p].passages += 1;
            if seen_documents.insert(documents[row]) {
                periods[p].documents += 1;
            }
            let date = dates[row].expect("dated");
            from[p] = Some(from[p].map_or(date, |f: NaiveDate| f.min(date)));
        }
    }
    for (period, date) in periods.iter_mut().zip(&from) {
        period.from = date.map(|d| d.to_string()).unwrap_or_default();
    }

    let totals: Vec<usize> = periods.iter().map(|p| p.passages).collect();
    let mut counts = Vec::with_capacity(members.len());
    let mut trends = Vec::with_capacity(members.len());
    let mut first_dates = Vec::with_capacity(members.len());
    for rows in members {
        let mut c = vec![0usize; labels.len()];
        let mut own: Vec<NaiveDate> = Vec::new();
        for &row in rows {
            if let Some(p) = period_of[row] {
                c[p] += 1;
                own.push(dates[row].expect("dated"));
            }
        }
        own.sort_unstable();
        first_dates.push(
            own.get(((own.len().saturating_sub(1)) as f64 * FIRST_SHARE) as usize)
                .map(|d| d.to_string()),
        );
        trends.push(trend(&c, &totals));
        counts.push(c);
    }
    OverTime {
        periods: Some(Periods { unit, periods }),
        counts,
        trends,
        first_dates,
    }
}

/// The two-proportion z-test of the latest period's share against the earlier periods'.
fn trend(counts: &[usize], totals: &[usize]) -> Option<Trend> {
    let (&x1, earlier) = counts.split_last()?;
    let (&n1, earlier_totals) = totals.split_last()?;
    let x0: usize = earlier.iter().sum();
    let n0: usize = earlier_totals.iter().sum();
    if n0 == 0 || n1 == 0 {
        return None;
    }
    let (p1, p0) = (x1 as f64 / n1 as f64, x0 as f64 / n0 as f64);
    let pooled = (x0 + x1) as f64 / (n0 + n1) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n0 as f64 + 1.0 / n1 as f64)).sqrt();
    let z = if se > 0.0 { (p1 - p0) / se } else { 0.0 };
    let direction = if z >= TREND_Z && p1 >= TREND_RATIO * p0 {
        Direction::Rising
    } else if z <= -TREND_Z && p1 * TREND_RATIO <= p0 {
        Direction::Falling
    } else {
        Direction::Steady
    };
    Some(Trend {
        direction,
        latest_share: p1 as f32,
        earlier_share: p0 as f32,
        z: z as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Option<NaiveDate> {
        parse_date(s)
    }

    #[test]
    fn dates_are_read_from_their_start_and_grouped_by_the_span() {
        assert_eq!(date("2025-11-03T10:00:00Z"), NaiveDate::from_ymd_opt(2025, 11, 3));
        assert_eq!(date("2025-11"), NaiveDate::from_ymd_opt(2025, 11, 1));
        assert_eq!(date("1998"), NaiveDate::from_ymd_opt(1998, 1, 1));
        assert_eq!(date("yesterday"), None);
        let d = |s| date(s).unwrap();
        assert_eq!(PeriodUnit::for_span(d("1998-01-01"), d("1998-01-31")), PeriodUnit::Week);
        assert_eq!(
            PeriodUnit::for_span(d("2024-01-01"), d("2025-06-30")),
            PeriodUnit::Month
        );
        assert_eq!(PeriodUnit::for_span(d("2015-01-01"), d("2025-06-30")), PeriodUnit::Year);
        assert_eq!(PeriodUnit::Week.label(d("1998-01-01")), "1998-W01");
        assert_eq!(PeriodUnit::Week.label(d("2021-01-03")), "2020-W53");
    }

    #[test]
    fn a_theme_that_triples_its_share_in_the_last_month_rises_and_one_that_vanishes_falls() {
        // 400 passages in each of four months; theme 0 holds 10% then 30% in the last month,
        // theme 1 holds 20% then none, theme 2 a steady 10%.
        let months = ["2025-05-01", "2025-07-01", "2025-09-01", "2025-11-01"];
        let (mut dates, mut docs, mut members) = (Vec::new(), Vec::new(), vec![Vec::new(); 3]);
        for (m, day) in months.iter().enumerate() {
            for i in 0..400 {
                let row = dates.len();
                dates.push(date(day));
                docs.push(m);
                let last = m == 3;
                match i {
                    _ if i < if last { 120 } else { 40 } => members[0].push(row),
                    _ if i >= 200 && i < if last { 200 } else { 280 } => members[1].push(row),
                    _ if (300..340).contains(&i) => members[2].push(row),
                    _ => {}
                }
            }
        }
        let found = over_time(&dates, &docs, &members);
        let periods = found.periods.unwrap();
        assert_eq!(periods.unit, PeriodUnit::Month);
        assert_eq!(periods.periods.len(), 4);
        assert_eq!(periods.periods[3].period, "2025-11");
        let direction = |t: usize| found.trends[t].as_ref().unwrap().direction;
        assert_eq!(direction(0), Direction::Rising);
        assert_eq!(direction(1), Direction::Falling);
        assert_eq!(direction(2), Direction::Steady);
        assert_eq!(found.counts[0], vec![40, 40, 40, 120]);
        assert_eq!(found.first_dates[0].as_deref(), Some("2025-05-01"));
    }

    #[test]
    fn undated_collections_have_no_periods() {
        let found = over_time(&[None, None], &[0, 1], &[vec![0, 1]]);
        assert!(found.periods.is_none() && found.trends[0].is_none());
    }
}
