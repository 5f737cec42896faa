//! Order statistics over cycle counts.

/// Median, spread and extremes of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Number of samples.
    pub count: usize,
    /// Smallest sample.
    pub min: u64,
    /// Middle sample (the lower middle for an even count).
    pub median: u64,
    /// 90th percentile.
    pub p90: u64,
    /// Largest sample.
    pub max: u64,
}

impl Stats {
    /// Sorts `samples` in place and summarises them; `None` when there are none.
    pub fn of(samples: &mut [u64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        Some(Stats {
            count: n,
            min: samples[0],
            median: samples[(n - 1) / 2],
            p90: samples[(n * 9 / 10).min(n - 1)],
            max: samples[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        let mut s = [9, 1, 5, 3, 7, 2, 8, 4, 6, 10];
        let st = Stats::of(&mut s).unwrap();
        assert_eq!(
            (st.min, st.median, st.p90, st.max, st.count),
            (1, 5, 10, 10, 10)
        );
        let mut odd = [3, 1, 2];
        assert_eq!(Stats::of(&mut odd).unwrap().median, 2);
        assert_eq!(Stats::of(&mut []), None);
    }
}
