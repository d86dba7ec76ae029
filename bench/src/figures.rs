//! What the measurements produce and everything downstream reads: figures as median,
//! min and max of their runs, and the one error type of the harness.

use serde_json::{Value, json};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: Vec<f64>,
}

impl Stats {
    pub fn of(mut runs: Vec<f64>) -> Self {
        runs.sort_by(f64::total_cmp);
        let n = runs.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => runs[n / 2],
            _ => (runs[n / 2 - 1] + runs[n / 2]) / 2.0,
        };
        Self {
            median,
            min: runs.first().copied().unwrap_or(f64::NAN),
            max: runs.last().copied().unwrap_or(f64::NAN),
            runs,
        }
    }

    pub fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max, "runs": self.runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_give_the_median_and_the_range() {
        let odd = Stats::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Stats::of(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!(even.median, 2.5);
        assert!(Stats::of(vec![]).median.is_nan());
    }
}
