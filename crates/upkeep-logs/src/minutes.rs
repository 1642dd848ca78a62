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

use crate::analysis::MinuteKey;
use crate::signature::Signature;

#[derive(Clone, Debug, Default)]
pub struct MinuteCounts {
    /// The minute whose counts are in `current` (meaningful while
    /// `touched` is not empty).
    minute: i64,
    /// Counts of `minute`, by slot (see [`slot`]).
    current: Vec<u64>,
    /// The slots of `current` that are not zero, in first-use order.
    touched: Vec<u32>,
    /// Finished minutes.
    rows: Vec<Row>,
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

fn key_of(minute: i64, slot: u32) -> MinuteKey {
    let slot = slot as usize;
    let upstream = match slot / Signature::COUNT {
        0 => None,
        n => Some((n - 1) as u32),
    };
    MinuteKey {
        minute,
        signature: Signature::ALL[slot % Signature::COUNT],
        upstream,
    }
}

impl MinuteCounts {
    #[inline]
    pub fn add(&mut self, minute: i64, signature: Signature, upstream: Option<u32>, n: u64) {
        if minute != self.minute {
            self.finish_minute();
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

    fn finish_minute(&mut self) {
        for &slot in &self.touched {
            let count = std::mem::take(&mut self.current[slot as usize]);
            self.rows.push(Row {
                minute: self.minute,
                slot,
                count,
            });
        }
        self.touched.clear();
    }

    /// Every count, finished minutes first; a key may appear more than
    /// once (see the module comment).
    pub fn iter(&self) -> impl Iterator<Item = (MinuteKey, u64)> + '_ {
        let finished = self
            .rows
            .iter()
            .map(|r| (key_of(r.minute, r.slot), r.count));
        let current = self
            .touched
            .iter()
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
}
