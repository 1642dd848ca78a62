//! Aggregation: counts per signature, per upstream address and per minute,
//! and the per-input accounting. Memory grows with the number of distinct
//! (minute, signature, upstream) triples that actually occur, never with the
//! number of lines.

use crate::classify::Classified;
use crate::error_line::{ContextFields, ErrorLine};
use crate::fxhash::FxMap;
use crate::join::AccessReport;
use crate::minutes::MinuteCounts;
use crate::scan::{EventSink, LineStats};
use crate::signature::Signature;
use crate::time::LogTime;

/// Distinct upstream addresses kept apart; beyond this they are pooled
/// under [`OVERFLOW_UPSTREAM`] so hostile input cannot grow memory.
const MAX_UPSTREAMS: usize = 10_000;
pub const OVERFLOW_UPSTREAM: &str = "(other addresses)";
/// Distinct `while` phases kept per signature (nginx has about ten).
const MAX_PHASES: usize = 16;
const MAX_OTHER_SAMPLES: usize = 5;

/// What happened to one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputReport {
    pub name: String,
    pub gzip: bool,
    pub stats: LineStats,
    /// Why reading stopped early or never started; the lines before it are
    /// counted.
    pub error: Option<String>,
}

/// Upstream addresses as small integers.
#[derive(Clone, Debug)]
pub struct Interner {
    ids: FxMap<Box<[u8]>, u32>,
    names: Vec<Box<[u8]>>,
    /// Recently interned ids plus one (0: empty), by [`recent_slot`].
    /// Failures repeat a handful of peers; for those this skips hashing
    /// the whole name and probing the map.
    recent: [u32; RECENT_SLOTS],
}

const RECENT_SLOTS: usize = 64;

impl Default for Interner {
    fn default() -> Interner {
        Interner {
            ids: FxMap::default(),
            names: Vec::new(),
            recent: [0; RECENT_SLOTS],
        }
    }
}

/// A slot for `name` from its length and last eight bytes, where
/// addresses such as `10.0.0.11:8080` and `10.0.0.12:8080` differ.
#[inline]
fn recent_slot(name: &[u8]) -> usize {
    let tail = match name.len().checked_sub(8) {
        Some(from) => u64::from_le_bytes(name[from..].try_into().expect("8 bytes")),
        None => name.iter().fold(0, |w, &b| w << 8 | u64::from(b)),
    };
    let mixed = (tail ^ name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 58) as usize % RECENT_SLOTS
}

impl Interner {
    pub fn intern(&mut self, name: &[u8]) -> u32 {
        let slot = recent_slot(name);
        if let Some(id) = self.recent[slot].checked_sub(1) {
            if *self.names[id as usize] == *name {
                return id;
            }
        }
        let id = self.intern_slow(name);
        self.recent[slot] = id + 1;
        id
    }

    fn intern_slow(&mut self, name: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let name: &[u8] = if self.names.len() >= MAX_UPSTREAMS {
            OVERFLOW_UPSTREAM.as_bytes()
        } else {
            name
        };
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub fn bytes(&self, id: u32) -> &[u8] {
        &self.names[id as usize]
    }

    pub fn name(&self, id: u32) -> String {
        String::from_utf8_lossy(&self.names[id as usize]).into_owned()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One upstream's failures: address, total, and per signature.
pub type UpstreamTotal = (String, u64, Vec<(Signature, u64)>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinuteKey {
    pub minute: i64,
    pub signature: Signature,
    /// `None` for signatures without an upstream (worker_connections, …).
    pub upstream: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub inputs: Vec<InputReport>,
    pub counts: [u64; Signature::COUNT],
    pub upstreams: Interner,
    /// Counts per signature, indexed by upstream id.
    pub by_upstream: Vec<[u64; Signature::COUNT]>,
    pub per_minute: MinuteCounts,
    pub phases: [Vec<(Box<[u8]>, u64)>; Signature::COUNT],
    pub first_time: Option<LogTime>,
    pub last_time: Option<LogTime>,
    pub other_upstream: u64,
    pub other_samples: Vec<String>,
    /// Filled when an access log was joined.
    pub access: Option<AccessReport>,
}

impl Analysis {
    pub fn total_stats(&self) -> LineStats {
        let mut total = LineStats::default();
        for i in &self.inputs {
            total.merge(&i.stats, 0);
        }
        total
    }

    pub fn count(&self, sig: Signature) -> u64 {
        self.counts[sig.index()]
    }

    pub fn total_events(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn record(&mut self, event: &Classified<'_>) {
        let sig = event.signature;
        let l = &event.line;
        self.counts[sig.index()] += 1;
        let upstream = l.upstream_addr().map(|a| self.intern_upstream(a));
        if let Some(up) = upstream {
            self.by_upstream[up as usize][sig.index()] += 1;
        }
        if let Some(t) = l.time {
            self.first_time = Some(self.first_time.map_or(t, |f| f.min(t)));
            self.last_time = Some(self.last_time.map_or(t, |f| f.max(t)));
            self.per_minute.add(t.minute(), sig, upstream, 1);
        }
        if let Some(phase) = l.phase {
            add_phase(&mut self.phases[sig.index()], phase, 1);
        }
    }

    /// The id of an upstream address, with a row in `by_upstream`.
    fn intern_upstream(&mut self, addr: &[u8]) -> u32 {
        let id = self.upstreams.intern(addr);
        if self.by_upstream.len() <= id as usize {
            self.by_upstream
                .resize(id as usize + 1, [0; Signature::COUNT]);
        }
        id
    }

    pub fn record_other(&mut self, line: &ErrorLine<'_>) {
        self.other_upstream += 1;
        if self.other_samples.len() < MAX_OTHER_SAMPLES {
            let mut text = String::from_utf8_lossy(line.message).into_owned();
            if let Some(e) = line.errno {
                text.push_str(&format!(" ({e}: …)"));
            }
            if let Some(p) = line.phase {
                text.push_str(" while ");
                text.push_str(&String::from_utf8_lossy(p));
            }
            if text.len() > 160 {
                let mut cut = 160;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            if !self.other_samples.contains(&text) {
                self.other_samples.push(text);
            }
        }
    }

    /// Adds another partial analysis (a thread's chunk) into this one.
    /// `other.inputs` are merged into the input of the same name.
    pub fn merge(&mut self, other: Analysis, line_offset: u64) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        let remap: Vec<u32> = (0..other.upstreams.len() as u32)
            .map(|id| self.intern_upstream(&other.upstreams.names[id as usize]))
            .collect();
        for (up, counts) in other.by_upstream.iter().enumerate() {
            let mine = &mut self.by_upstream[remap[up] as usize];
            for (a, b) in mine.iter_mut().zip(counts) {
                *a += b;
            }
        }
        for (key, n) in other.per_minute.iter() {
            let upstream = key.upstream.map(|u| remap[u as usize]);
            self.per_minute.add(key.minute, key.signature, upstream, n);
        }
        for (mine, theirs) in self.phases.iter_mut().zip(other.phases) {
            for (phase, n) in theirs {
                add_phase(mine, &phase, n);
            }
        }
        self.first_time = match (self.first_time, other.first_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_time = match (self.last_time, other.last_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.other_upstream += other.other_upstream;
        for s in other.other_samples {
            if self.other_samples.len() < MAX_OTHER_SAMPLES && !self.other_samples.contains(&s) {
                self.other_samples.push(s);
            }
        }
        for input in other.inputs {
            match self.inputs.iter_mut().find(|i| i.name == input.name) {
                Some(mine) => {
                    mine.stats.merge(&input.stats, line_offset);
                    mine.error = mine.error.take().or(input.error);
                }
                None => self.inputs.push(input),
            }
        }
    }

    /// Upstreams by total failures, largest first.
    pub fn top_upstreams(&self, n: usize) -> Vec<UpstreamTotal> {
        let mut rows: Vec<_> = self
            .by_upstream
            .iter()
            .enumerate()
            .filter(|(_, per)| per.iter().any(|&n| n > 0))
            .map(|(up, per)| {
                let total: u64 = per.iter().sum();
                let sigs = Signature::ALL
                    .into_iter()
                    .filter(|s| per[s.index()] > 0)
                    .map(|s| (s, per[s.index()]))
                    .collect::<Vec<_>>();
                (self.upstreams.name(up as u32), total, sigs)
            })
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(n);
        rows
    }

    /// Per-upstream counts of one signature, largest first.
    pub fn upstreams_of(&self, sig: Signature) -> Vec<(String, u64)> {
        let mut rows: Vec<_> = self
            .by_upstream
            .iter()
            .enumerate()
            .filter(|(_, per)| per[sig.index()] > 0)
            .map(|(up, per)| (self.upstreams.name(up as u32), per[sig.index()]))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }

    /// Counts per minute over all signatures, in time order.
    pub fn minutes(&self) -> Vec<(i64, [u64; Signature::COUNT])> {
        let mut by: FxMap<i64, [u64; Signature::COUNT]> = FxMap::default();
        for (k, n) in self.per_minute.iter() {
            by.entry(k.minute).or_insert([0; Signature::COUNT])[k.signature.index()] += n;
        }
        let mut rows: Vec<_> = by.into_iter().collect();
        rows.sort_by_key(|r| r.0);
        rows
    }

    /// The per-minute rows, sorted by minute, signature, upstream name.
    pub fn per_minute_rows(&self) -> Vec<(i64, Signature, Option<String>, u64)> {
        let mut rows: Vec<_> = self
            .per_minute
            .totals()
            .into_iter()
            .map(|(k, n)| {
                (
                    k.minute,
                    k.signature,
                    k.upstream.map(|u| self.upstreams.name(u)),
                    n,
                )
            })
            .collect();
        rows.sort();
        rows
    }

    /// An upstream's name as logged; empty for none.
    pub fn upstream_bytes(&self, id: Option<u32>) -> &[u8] {
        id.map_or(&[][..], |u| self.upstreams.bytes(u))
    }

    pub fn phases_of(&self, sig: Signature) -> Vec<(String, u64)> {
        let mut rows: Vec<_> = self.phases[sig.index()]
            .iter()
            .map(|(p, n)| (String::from_utf8_lossy(p).into_owned(), *n))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

fn add_phase(phases: &mut Vec<(Box<[u8]>, u64)>, phase: &[u8], n: u64) {
    if let Some(e) = phases.iter_mut().find(|(p, _)| &p[..] == phase) {
        e.1 += n;
    } else if phases.len() < MAX_PHASES {
        phases.push((phase.into(), n));
    }
}

impl EventSink for Analysis {
    /// The counts need only the upstream of each line.
    fn context_fields(&self) -> ContextFields {
        ContextFields::UpstreamOnly
    }

    fn on_signature(&mut self, event: &Classified<'_>) {
        self.record(event);
    }

    fn on_other_upstream(&mut self, line: &ErrorLine<'_>) {
        self.record_other(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_ids_are_stable_through_the_recent_cache() {
        let mut i = Interner::default();
        let names: Vec<String> = (0..200)
            .map(|n| format!("10.0.{}.{}:8080", n / 7, n))
            .collect();
        let first: Vec<u32> = names.iter().map(|n| i.intern(n.as_bytes())).collect();
        assert_eq!(first, (0..200).collect::<Vec<u32>>());
        // Again, in another order: many names share a cache slot.
        for (n, name) in names.iter().enumerate().rev() {
            assert_eq!(i.intern(name.as_bytes()), n as u32);
            assert_eq!(i.bytes(n as u32), name.as_bytes());
        }
        assert_eq!(i.intern(b""), 200);
        assert_eq!(i.intern(b"a"), 201);
        assert_eq!(i.intern(b""), 200);
        assert_eq!(i.len(), 202);
    }

    #[test]
    fn interner_pools_addresses_beyond_its_limit() {
        let mut i = Interner::default();
        for n in 0..MAX_UPSTREAMS {
            i.intern(format!("u{n}").as_bytes());
        }
        let over = i.intern(b"one too many");
        assert_eq!(i.bytes(over), OVERFLOW_UPSTREAM.as_bytes());
        assert_eq!(i.intern(b"another"), over);
        assert_eq!(i.intern(b"u7"), 7);
    }
}
