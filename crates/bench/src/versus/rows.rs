//! The rows of `--peer openclaw`: ClawPair's figure, OpenClaw's, their ratio (ClawPair's over
//! OpenClaw's, as "×N" or "1/N") and the target it is held to.

use std::time::Duration;

use crate::load::Run;
use crate::rows::Row;

/// What a row's ratio is held to: ClawPair at least N times OpenClaw's figure, or at most 1/N
/// of it.
#[derive(Clone, Copy)]
pub enum Goal {
    None,
    AtLeast(f64),
    AtMost(f64),
}

/// ClawPair's figure over OpenClaw's, as "×N" (more) or "1/N" (less).
pub fn ratio(ours: f64, theirs: f64) -> String {
    if ours <= 0.0 || theirs <= 0.0 || !ours.is_finite() || !theirs.is_finite() {
        return "—".into();
    }
    let r = ours / theirs;
    let n = |x: f64| {
        if x < 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.0}")
        }
    };
    if r >= 1.0 {
        format!("×{}", n(r))
    } else {
        format!("1/{}", n(1.0 / r))
    }
}

/// The ratio, target and verdict columns of a row comparing `ours` with `theirs`.
pub fn judged(ours: f64, theirs: f64, goal: Goal) -> Row {
    let (target, met) = match goal {
        Goal::None => ("—".to_string(), "—".to_string()),
        Goal::AtLeast(n) => (
            format!("≥ ×{n:.0}"),
            crate::rows::yes(theirs > 0.0 && ours >= n * theirs),
        ),
        Goal::AtMost(n) => (
            format!("≤ 1/{n:.0}"),
            crate::rows::yes(theirs > 0.0 && ours * n <= theirs),
        ),
    };
    Row {
        metric: String::new(),
        ours: String::new(),
        baseline: String::new(),
        ratio: ratio(ours, theirs),
        target,
        met,
    }
}

pub fn held_of(held: usize, asked: usize) -> String {
    let n = |x: usize| crate::rows::thousands(x as f64);
    format!("{} of {}", n(held), n(asked))
}

/// "one start", "median of 3 starts".
pub fn of_runs(n: usize, what: &str) -> String {
    if n == 1 {
        format!("one {what}")
    } else {
        format!("median of {n} {what}s")
    }
}

pub fn kib(k: f64) -> String {
    if k >= 100.0 {
        format!("{} KiB", crate::rows::thousands(k))
    } else {
        format!("{k:.1} KiB")
    }
}

pub fn mib(kib: u64) -> String {
    let m = kib as f64 / 1024.0;
    if m >= 1024.0 {
        format!("{:.2} GiB", m / 1024.0)
    } else if m >= 100.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}

pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

pub fn row_time(metric: &str, ours: Duration, theirs: Duration) -> Row {
    Row {
        metric: metric.into(),
        ours: duration(ours),
        baseline: duration(theirs),
        ..judged(ours.as_secs_f64(), theirs.as_secs_f64(), Goal::None)
    }
}

pub fn row_memory(metric: &str, ours: u64, theirs: u64, at_most: Option<f64>) -> Row {
    let goal = at_most.map_or(Goal::None, Goal::AtMost);
    Row {
        metric: metric.into(),
        ours: mib(ours),
        baseline: mib(theirs),
        ..judged(ours as f64, theirs as f64, goal)
    }
}

pub fn row_rate(metric: &str, ours: &Run, theirs: &Run) -> Row {
    let per_s = |r: &Run| crate::rows::rate(r.rate());
    Row {
        metric: metric.into(),
        ours: per_s(ours),
        baseline: per_s(theirs),
        ..judged(ours.rate(), theirs.rate(), Goal::AtLeast(10.0))
    }
}

/// What each successful attempt cost the server in CPU time: the same work whatever share of
/// the machine the load generator takes, unlike a rate.
pub fn row_cpu_each(metric: &str, ours: &Run, theirs: &Run) -> Row {
    let (o, t) = (ours.server_cpu_each(), theirs.server_cpu_each());
    let cpu = |d: Duration| match d.as_micros() {
        0..1000 => format!("{} µs", d.as_micros()),
        _ => duration(d),
    };
    Row {
        metric: metric.into(),
        ours: cpu(o),
        baseline: cpu(t),
        ..judged(o.as_secs_f64(), t.as_secs_f64(), Goal::None)
    }
}

/// p50 / p99 of each; the ratio is of the p99s.
pub fn row_latency(metric: &str, ours: &mut Run, theirs: &mut Run) -> Row {
    let both = |r: &mut Run| format!("{} / {}", duration(r.pct(50.0)), duration(r.pct(99.0)));
    let (p99_ours, p99_theirs) = (ours.pct(99.0), theirs.pct(99.0));
    Row {
        metric: metric.into(),
        ours: both(ours),
        baseline: both(theirs),
        ..judged(p99_ours.as_secs_f64(), p99_theirs.as_secs_f64(), Goal::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_as_times_more_or_a_fraction() {
        assert_eq!(ratio(150.0, 10.0), "×15");
        assert_eq!(ratio(25.0, 10.0), "×2.5");
        assert_eq!(ratio(1.0, 20.0), "1/20");
        assert_eq!(ratio(0.0, 20.0), "—");
        assert_eq!(ratio(1.0, f64::NAN), "—");
    }

    #[test]
    fn cpu_per_connect_is_the_median_rounds_and_reads_in_microseconds() {
        let round = |ok: u64, ms: u64, cpu_ms: u64| Run {
            ok,
            elapsed: Duration::from_millis(ms),
            server_cpu: Duration::from_millis(cpu_ms),
            ..Run::default()
        };
        // The median round by rate is the second: 1,000 in 100 ms, 55 ms of CPU.
        let ours = Run::median_of(vec![
            round(900, 100, 90),
            round(1_000, 100, 55),
            round(1_100, 100, 70),
        ]);
        assert_eq!(ours.server_cpu_each(), Duration::from_micros(55));
        let theirs = Run::median_of(vec![round(60, 100, 101)]);
        let row = row_cpu_each("cpu", &ours, &theirs);
        assert_eq!(
            (row.ours.as_str(), row.baseline.as_str()),
            ("55 µs", "1.68 ms")
        );
        assert_eq!(row.ratio, "1/31");
        // Nothing done: no division by zero, and no ratio.
        assert_eq!(row_cpu_each("cpu", &Run::default(), &theirs).ratio, "—");
    }

    #[test]
    fn targets_are_met_only_by_the_ratio_they_name() {
        assert_eq!(judged(100.0, 10.0, Goal::AtLeast(10.0)).met, "yes");
        assert_eq!(judged(99.0, 10.0, Goal::AtLeast(10.0)).met, "**no**");
        assert_eq!(judged(1.0, 20.0, Goal::AtMost(20.0)).met, "yes");
        assert_eq!(judged(1.0, 19.0, Goal::AtMost(20.0)).met, "**no**");
        // Nothing measured on the other side meets nothing.
        assert_eq!(judged(1.0, 0.0, Goal::AtMost(20.0)).met, "**no**");
        assert_eq!(judged(1.0, 2.0, Goal::None).target, "—");
    }
}
