//! Failure counts per minute × signature × upstream.
//!
//! Every recorded failure adds to this table, so it is on the hot path, and
//! it is the one structure that grows with the time a log covers (not with
//! its size). Logs are written in time order, so the minute being filled is
//! kept in a dense array indexed by (upstream, signature) and moved out,
//! sparse, as compact rows when the minute changes: an increment is an
//! array index instead of a hash lookup, and a finished minute costs 24
//! bytes per (signature, upstream) pair seen in it.
//!
//! A line out of time order (interleaved inputs, a clock step, merged
//! thread results) simply starts another run of rows for its minute; the
//! readers here sum rows with the same key.
//!
//! Memory is bounded by a row limit: when the finished rows pass it, they
//! are merged into coarser time buckets (5, 15, 60 minutes, 6 hours, a day,
//! then doubling) until at most half the limit remain, and every later
//! minute is counted in a bucket of that width. [`MinuteCounts::bucket_minutes`]
//! says which width the counts have.
//!
//! When an upstream address loses its id to another (see
//! [`crate::upstreams`]), its rows become rows of the pooled addresses:
//! rather than rewriting them, the table notes how many rows existed at that
//! moment, and readers relabel the older rows of that id.

use crate::analysis::MinuteKey;
use crate::signature::Signature;

/// Default of [`MinuteCounts::set_max_rows`]: 2 million rows, 48 MB.
pub const DEFAULT_MAX_ROWS: usize = 2_000_000;

/// Bucket widths in minutes; past the last, the width doubles.
const BUCKETS: [i64; 6] = [1, 5, 15, 60, 360, 1440];

#[derive(Clone, Debug)]
pub struct MinuteCounts {
    /// The minute (bucket start) whose counts are in `current`
    /// (meaningful while `touched` is not empty).
    minute: i64,
    /// Counts of `minute`, by slot (see [`slot`]).
    current: Vec<u64>,
    /// The slots of `current` that were used, in first-use order.
    touched: Vec<u32>,
    /// Finished minutes.
    rows: Vec<Row>,
    /// Minutes per bucket (1 until the row limit is reached).
    bucket: i64,
    max_rows: usize,
    /// Per upstream id: rows before this index belong to an address that
    /// lost the id, and count for `pooled`.
    retired_at: Vec<usize>,
    pooled: u32,
}

impl Default for MinuteCounts {
    fn default() -> MinuteCounts {
        MinuteCounts {
            minute: 0,
            current: Vec::new(),
            touched: Vec::new(),
            rows: Vec::new(),
            bucket: 1,
            max_rows: DEFAULT_MAX_ROWS,
            retired_at: Vec::new(),
            pooled: 0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Row {
    minute: i64,
    slot: u32,
    count: u64,
}

/// The dense index of a (signature, upstream) pair: failures without an
/// upstream first, then each upstream id's signatures.
fn slot(signature: Signature, upstream: Option<u32>) -> usize {
    upstream.map_or(0, |u| u as usize + 1) * Signature::COUNT + signature.index()
}

fn upstream_of(slot: u32) -> Option<u32> {
    match slot as usize / Signature::COUNT {
        0 => None,
        n => Some((n - 1) as u32),
    }
}

fn key_of(minute: i64, slot: u32) -> MinuteKey {
    MinuteKey {
        minute,
        signature: Signature::ALL[slot as usize % Signature::COUNT],
        upstream: upstream_of(slot),
    }
}

impl MinuteCounts {
    /// Keeps at most about `max_rows` finished rows (at least 1,000).
    pub fn set_max_rows(&mut self, max_rows: usize) {
        self.max_rows = max_rows.max(1000);
    }

    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Minutes per bucket: 1 unless the row limit made the counts coarser.
    pub fn bucket_minutes(&self) -> i64 {
        self.bucket
    }

    #[inline]
    pub fn add(&mut self, minute: i64, signature: Signature, upstream: Option<u32>, n: u64) {
        let mut minute = if self.bucket == 1 {
            minute
        } else {
            minute - minute.rem_euclid(self.bucket)
        };
        if minute != self.minute {
            self.finish_minute();
            // Finishing may have widened the buckets.
            minute -= minute.rem_euclid(self.bucket);
            self.minute = minute;
        }
        let slot = slot(signature, upstream);
        if slot >= self.current.len() {
            self.current.resize(slot + 1, 0);
        }
        if self.current[slot] == 0 {
            self.touched.push(slot as u32);
        }
        self.current[slot] += n;
    }

    /// Upstream id `upstream` now belongs to another address: what was
    /// counted for it so far counts for `pooled`.
    pub fn retire(&mut self, upstream: u32, pooled: u32) {
        self.pooled = pooled;
        for sig in Signature::ALL {
            let from = slot(sig, Some(upstream));
            let n = match self.current.get_mut(from) {
                Some(c) if *c > 0 => std::mem::take(c),
                _ => continue,
            };
            // The zeroed slot stays in `touched`; finish_minute skips it.
            self.add(self.minute, sig, Some(pooled), n);
        }
        let u = upstream as usize;
        if self.retired_at.len() <= u {
            self.retired_at.resize(u + 1, 0);
        }
        self.retired_at[u] = self.rows.len();
    }

    fn finish_minute(&mut self) {
        for &slot in &self.touched {
            let count = std::mem::take(&mut self.current[slot as usize]);
            if count > 0 {
                self.rows.push(Row {
                    minute: self.minute,
                    slot,
                    count,
                });
            }
        }
        self.touched.clear();
        if self.rows.len() > self.max_rows {
            self.coarsen(None);
        }
    }

    /// The slot row `i` counts for, with retired ids resolved.
    fn resolved_slot(&self, i: usize, slot: u32) -> u32 {
        match upstream_of(slot) {
            Some(u) if self.retired_at.get(u as usize).is_some_and(|&at| i < at) => {
                let sig = Signature::ALL[slot as usize % Signature::COUNT];
                self::slot(sig, Some(self.pooled)) as u32
            }
            _ => slot,
        }
    }

    /// Merges the finished rows into wider buckets: to `at_least` minutes
    /// (another table's width, when merging), or until at most half the row
    /// limit remain.
    fn coarsen(&mut self, at_least: Option<i64>) {
        // The open minute joins the rows, so that it is bucketed too.
        if !self.touched.is_empty() {
            let max = std::mem::replace(&mut self.max_rows, usize::MAX);
            self.finish_minute();
            self.max_rows = max;
        }
        for i in 0..self.rows.len() {
            self.rows[i].slot = self.resolved_slot(i, self.rows[i].slot);
        }
        self.retired_at.clear();
        loop {
            let next = BUCKETS
                .into_iter()
                .find(|&b| b > self.bucket)
                .unwrap_or(self.bucket * 2);
            let done = match at_least {
                Some(w) => self.bucket >= w,
                None => self.rows.len() <= self.max_rows / 2,
            };
            if done {
                break;
            }
            let before = self.rows.len();
            self.bucket = match at_least {
                Some(w) if next > w => w,
                _ => next,
            };
            for r in &mut self.rows {
                r.minute -= r.minute.rem_euclid(self.bucket);
            }
            self.rows.sort_unstable_by_key(|r| (r.minute, r.slot));
            self.rows.dedup_by(|later, kept| {
                let same = later.minute == kept.minute && later.slot == kept.slot;
                if same {
                    kept.count += later.count;
                }
                same
            });
            // One bucket for the whole span: nothing left to merge in time.
            let one_bucket =
                self.rows.first().map(|r| r.minute) == self.rows.last().map(|r| r.minute);
            if at_least.is_none() && one_bucket && self.rows.len() == before {
                break;
            }
        }
        self.rows.shrink_to(self.max_rows.min(self.rows.len() * 2));
    }

    /// Makes this table's buckets at least `minutes` wide (before merging
    /// a coarser table into it).
    pub fn widen_to(&mut self, minutes: i64) {
        if minutes > self.bucket {
            self.coarsen(Some(minutes));
        }
    }

    /// Every count, finished minutes first; a key may appear more than
    /// once (see the module comment).
    pub fn iter(&self) -> impl Iterator<Item = (MinuteKey, u64)> + '_ {
        let finished = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (key_of(r.minute, self.resolved_slot(i, r.slot)), r.count));
        let current = self
            .touched
            .iter()
            .filter(|&&s| self.current[s as usize] > 0)
            .map(|&s| (key_of(self.minute, s), self.current[s as usize]));
        finished.chain(current)
    }

    /// One total per key, sorted by minute, signature and upstream id.
    pub fn totals(&self) -> Vec<(MinuteKey, u64)> {
        let mut all: Vec<_> = self.iter().collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        let mut out: Vec<(MinuteKey, u64)> = Vec::with_capacity(all.len());
        for (key, n) in all {
            match out.last_mut() {
                Some((last, total)) if *last == key => *total += n,
                _ => out.push((key, n)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Signature::*;

    fn key(minute: i64, signature: Signature, upstream: Option<u32>) -> MinuteKey {
        MinuteKey {
            minute,
            signature,
            upstream,
        }
    }

    #[test]
    fn sums_in_order_and_out_of_order() {
        let mut m = MinuteCounts::default();
        m.add(10, UpstreamReset, Some(0), 1);
        m.add(10, UpstreamReset, Some(0), 1);
        m.add(10, WorkerConnectionsNotEnough, None, 1);
        m.add(11, UpstreamReset, Some(3), 1);
        // Back to minute 10 (an interleaved input), then on again.
        m.add(10, UpstreamReset, Some(0), 5);
        m.add(12, ConnectRefused, Some(3), 1);
        assert_eq!(
            m.totals(),
            vec![
                (key(10, UpstreamReset, Some(0)), 7),
                (key(10, WorkerConnectionsNotEnough, None), 1),
                (key(11, UpstreamReset, Some(3)), 1),
                (key(12, ConnectRefused, Some(3)), 1),
            ]
        );
        // iter() shows the runs as they are, with the minute-10 key twice.
        let tens = m
            .iter()
            .filter(|(k, _)| *k == key(10, UpstreamReset, Some(0)))
            .count();
        assert_eq!(tens, 2);
        assert_eq!(m.iter().map(|(_, n)| n).sum::<u64>(), 10);
    }

    #[test]
    fn every_slot_maps_back_to_its_key() {
        for sig in Signature::ALL {
            for up in [None, Some(0), Some(1), Some(9_999)] {
                let s = slot(sig, up) as u32;
                assert_eq!(key_of(7, s), key(7, sig, up));
            }
        }
    }

    #[test]
    fn a_retired_id_counts_for_the_pool_before_and_its_new_owner_after() {
        let mut m = MinuteCounts::default();
        m.add(1, UpstreamReset, Some(2), 3);
        m.add(2, UpstreamReset, Some(2), 4);
        // In minute 2, id 2 passes to a new address.
        m.retire(2, 99);
        m.add(2, UpstreamReset, Some(2), 1);
        m.add(3, UpstreamReset, Some(2), 6);
        assert_eq!(
            m.totals(),
            vec![
                (key(1, UpstreamReset, Some(99)), 3),
                (key(2, UpstreamReset, Some(2)), 1),
                (key(2, UpstreamReset, Some(99)), 4),
                (key(3, UpstreamReset, Some(2)), 6),
            ]
        );
    }

    #[test]
    fn the_row_limit_coarsens_time_and_keeps_every_count() {
        let mut m = MinuteCounts::default();
        m.set_max_rows(1000);
        // 5,000 minutes, 3 upstreams each: 15,000 rows at one-minute width.
        for minute in 0..5000 {
            for up in 0..3 {
                m.add(minute, UpstreamReset, Some(up), 1);
            }
        }
        assert!(m.rows.len() <= 1000, "{}", m.rows.len());
        assert!(m.bucket_minutes() > 1);
        let totals = m.totals();
        assert_eq!(totals.iter().map(|(_, n)| n).sum::<u64>(), 15_000);
        let w = m.bucket_minutes();
        assert!(totals.iter().all(|(k, _)| k.minute % w == 0));
        // Each full bucket holds `w` minutes of one count per upstream.
        assert_eq!(totals[0].1, w as u64);
    }
}
