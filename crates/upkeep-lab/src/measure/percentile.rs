//! Latency percentiles by the nearest-rank method (no interpolation: every
//! reported value is one that was observed).

use std::time::Duration;

/// The `p`-th percentile (0 < p <= 100) of `values`, or `None` if empty.
pub fn nearest_rank(values: &mut [Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(nearest_rank(&mut v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(nearest_rank(&mut v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            nearest_rank(&mut v, 100.0),
            Some(Duration::from_millis(100))
        );
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(nearest_rank(&mut one, 99.0), Some(Duration::from_millis(7)));
        assert_eq!(nearest_rank(&mut [], 50.0), None);
    }
}
