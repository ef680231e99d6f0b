//! A [`Report`] as a text table: one line per cache, then each verdict.

use std::fmt;

use super::Report;
use super::verdict::human;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<32} {:<7} {:>9} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>11} {:<12}",
            "cache",
            "backend",
            "calls/s",
            "hit %",
            "loads",
            "load p50",
            "load p99",
            "saved",
            "cost",
            "inv/call",
            "differed",
            "verdict"
        )?;
        for r in &self.rows {
            let pct = r
                .hit_ratio
                .map_or("-".to_owned(), |h| format!("{:.1}", h * 100.0));
            let opt = |d: Option<std::time::Duration>| d.map_or("-".to_owned(), human);
            let differed = match r.verify > 0.0 {
                true => format!("{}/{}", r.mismatched, r.verified),
                false => "-".to_owned(),
            };
            writeln!(
                f,
                "{:<32} {:<7} {:>9.1} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7.3} {:>11} {:<12}",
                r.name,
                r.backend,
                r.calls_per_second,
                pct,
                r.loads,
                opt(r.load_p50),
                opt(r.load_p99),
                human(r.time_saved),
                human(r.cache_time),
                r.invalidations_per_call,
                differed,
                r.verdict.kind.to_string(),
            )?;
        }
        for r in &self.rows {
            writeln!(f, "{}: {}", r.name, r.verdict.reason)?;
        }
        Ok(())
    }
}
