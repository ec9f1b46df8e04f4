//! Order statistics of a set of samples.

use serde::Serialize;

use crate::cpu::round1;

/// Percentiles by the nearest-rank method: p50 of 1..=10 is 5, p99 of 100 samples is the 99th smallest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// None for no samples.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            n: sorted.len(),
            min: round1(sorted[0]),
            p50: round1(rank(50.0)),
            p95: round1(rank(95.0)),
            p99: round1(rank(99.0)),
            max: round1(sorted[sorted.len() - 1]),
            mean: round1(sorted.iter().sum::<f64>() / sorted.len() as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!(
            (s.p50, s.p95, s.p99, s.max, s.min),
            (50.0, 95.0, 99.0, 100.0, 1.0)
        );
        assert_eq!(s.mean, 50.5);
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_none() {
        let s = Summary::of(&[7.0]).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (7.0, 7.0, 7.0));
        assert!(Summary::of(&[]).is_none());
    }
}
