//! Aggregation: counts per signature, per upstream address and per minute,
//! and the per-input accounting. Memory is bounded: at most
//! [`MAX_UPSTREAMS`] addresses are tracked (the most frequent, see
//! [`crate::upstreams`]), and the per-minute rows are limited by
//! [`MinuteCounts::set_max_rows`]; it never grows with the number of lines.

use crate::classify::Classified;
use crate::error_line::{ContextFields, ErrorLine};
use crate::fxhash::FxMap;
use crate::join::AccessReport;
use crate::minutes::MinuteCounts;
use crate::scan::{EventSink, LineStats};
use crate::signature::Signature;
use crate::time::LogTime;

pub use crate::upstreams::{UpstreamTable, MAX_UPSTREAMS, OVERFLOW_UPSTREAM};
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

/// One row of [`Analysis::top_upstreams`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopUpstream {
    pub upstream: String,
    pub count: u64,
    /// Up to this many more failures of the address are counted under
    /// [`OVERFLOW_UPSTREAM`] (0: exact).
    pub error: u64,
    pub signatures: Vec<(Signature, u64)>,
}

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
    /// Counts per signature and upstream address.
    pub upstreams: UpstreamTable,
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
            self.upstreams.add(up, sig, 1);
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

    /// The id of an upstream address. When it takes the id of another
    /// address, the per-minute counts of that one go to the pool.
    #[inline]
    fn intern_upstream(&mut self, addr: &[u8]) -> u32 {
        let (id, evicted) = self.upstreams.intern(addr);
        if evicted {
            self.per_minute.retire(id, self.upstreams.pooled_id());
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
        // Ids this table gives away while taking in `other` retire their
        // per-minute rows first.
        let pooled = self.upstreams.pooled_id();
        let before: Vec<Box<[u8]>> = (0..self.upstreams.len() as u32)
            .map(|id| self.upstreams.bytes(id).into())
            .collect();
        let remap = self.upstreams.merge(&other.upstreams);
        for (id, name) in before.iter().enumerate() {
            if self.upstreams.bytes(id as u32) != &name[..] {
                self.per_minute.retire(id as u32, pooled);
            }
        }
        let their_pool = other.upstreams.pooled_id();
        self.per_minute.widen_to(other.per_minute.bucket_minutes());
        for (key, n) in other.per_minute.iter() {
            let upstream = key.upstream.map(|u| {
                if u == their_pool {
                    pooled
                } else {
                    remap[u as usize]
                }
            });
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

    /// Every upstream with failures, the pooled addresses included:
    /// (id, counts per signature).
    fn upstream_rows(&self) -> impl Iterator<Item = (u32, &[u64; Signature::COUNT])> + '_ {
        let t = &self.upstreams;
        (0..t.len() as u32)
            .map(|id| (id, t.counts(id)))
            .chain(std::iter::once((t.pooled_id(), t.pooled())))
            .filter(|(_, per)| per.iter().any(|&n| n > 0))
    }

    /// Upstreams by total failures, largest first.
    pub fn top_upstreams(&self, n: usize) -> Vec<TopUpstream> {
        let mut rows: Vec<_> = self
            .upstream_rows()
            .map(|(id, per)| TopUpstream {
                upstream: self.upstreams.name(id),
                count: per.iter().sum(),
                error: if id == self.upstreams.pooled_id() {
                    0
                } else {
                    self.upstreams.error(id)
                },
                signatures: Signature::ALL
                    .into_iter()
                    .filter(|s| per[s.index()] > 0)
                    .map(|s| (s, per[s.index()]))
                    .collect(),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.upstream.cmp(&b.upstream))
        });
        rows.truncate(n);
        rows
    }

    /// Per-upstream counts of one signature, largest first.
    pub fn upstreams_of(&self, sig: Signature) -> Vec<(String, u64)> {
        let mut rows: Vec<_> = self
            .upstream_rows()
            .filter(|(_, per)| per[sig.index()] > 0)
            .map(|(id, per)| (self.upstreams.name(id), per[sig.index()]))
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
