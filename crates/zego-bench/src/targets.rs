//! The targets, each set next to the measured number as pass/miss with its margin.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: &'static str,
    /// e.g. "<= 40 ms".
    pub target: String,
    pub measured: Option<f64>,
    pub pass: bool,
    /// How far inside (positive) or outside (negative) the target the measurement is, in its unit.
    pub margin: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

pub fn judge(name: &'static str, unit: &str, bound: Bound, measured: Option<f64>) -> Verdict {
    let (target, margin) = match bound {
        Bound::AtMost(limit) => (format!("<= {limit} {unit}"), measured.map(|m| limit - m)),
        Bound::AtLeast(limit) => (format!(">= {limit} {unit}"), measured.map(|m| m - limit)),
    };
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Verdict {
        name,
        target: target.trim_end().to_owned(),
        measured: measured.map(round),
        pass: margin.is_some_and(|m| m >= 0.0),
        margin: margin.map(round),
    }
}

/// A yes/no target (e.g. "still playing"): measured is 1 or 0.
pub fn judge_flag(name: &'static str, target: &str, ok: bool) -> Verdict {
    Verdict {
        name,
        target: target.to_owned(),
        measured: Some(if ok { 1.0 } else { 0.0 }),
        pass: ok,
        margin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_are_positive_inside_and_negative_outside() {
        let v = judge("p50", "ms", Bound::AtMost(40.0), Some(31.5));
        assert!(v.pass);
        assert_eq!(v.margin, Some(8.5));
        let v = judge("rendered", "", Bound::AtLeast(0.98), Some(0.95));
        assert!(!v.pass);
        assert_eq!(v.margin, Some(-0.03));
        assert_eq!(v.target, ">= 0.98");
    }

    #[test]
    fn nothing_measured_is_a_miss() {
        let v = judge("p50", "ms", Bound::AtMost(40.0), None);
        assert!(!v.pass);
        assert_eq!(v.margin, None);
    }
}
