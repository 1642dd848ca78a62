//! Failures per upstream address, in bounded memory, with the worst
//! addresses always kept.
//!
//! A log can name any number of addresses (Kubernetes pods come and go), so
//! at most [`MAX_UPSTREAMS`] are tracked at once. When the table is full, a
//! new address takes the slot of the address with the smallest count
//! (the space-saving algorithm of Metwally, Agrawal and El Abbadi, 2005):
//! the evicted address's failures move to [`OVERFLOW_UPSTREAM`], and the
//! newcomer inherits that smallest count as its *error*, the most failures
//! of it that can have been pooled before it got its slot. So:
//!
//! * the count shown for an address is exact for the time it held its
//!   slot, and its true count is at most `count + error` (error 0 for every
//!   address while the table never filled);
//! * an address that is not listed has at most [`UpstreamTable::listed_above`]
//!   failures: every address with more is listed.
//!
//! Until the table fills there is no extra work on the hot path; after, an
//! increment also restores the min-heap of counts (usually a compare or two,
//! since frequent addresses sit at the bottom of it).
//!
//! The table is [`AddressTable`], which counts `N` numbers per address
//! (their sum is what ranks addresses): [`UpstreamTable`] counts failures
//! per [`Signature`]; `upkeep watch` also counts requests and 502s per
//! peer with it.

use std::collections::BTreeMap;

use crate::fxhash::FxMap;
use crate::signature::Signature;

/// Distinct upstream addresses tracked at once.
pub const MAX_UPSTREAMS: usize = 10_000;
pub const OVERFLOW_UPSTREAM: &str = "(other addresses)";

const RECENT_SLOTS: usize = 64;

/// Failures per signature of each upstream address.
pub type UpstreamTable = AddressTable<{ Signature::COUNT }>;

/// `N` counts per address, for at most a given number of addresses at
/// once (see the module's documentation).
#[derive(Clone, Debug)]
pub struct AddressTable<const N: usize> {
    capacity: usize,
    ids: FxMap<Box<[u8]>, u32>,
    names: Vec<Box<[u8]>>,
    /// Recently used ids plus one (0: empty), by [`recent_slot`]. Failures
    /// repeat a handful of peers; for those this skips hashing the whole
    /// name and probing the map. Entries may be stale after an eviction;
    /// the name comparison catches that.
    recent: [u32; RECENT_SLOTS],
    /// Per id: failures per signature while the current address held it.
    counts: Vec<[u64; N]>,
    /// Per id: the sum of `counts`.
    totals: Vec<u64>,
    /// Per id: at most this many failures of the address were pooled before
    /// it got the id.
    errors: Vec<u64>,
    /// Failures per signature of addresses that lost their id.
    pooled: [u64; N],
    /// Addresses that lost their id.
    evictions: u64,
    /// Min-heap of ids by `totals + errors`; empty until the table fills.
    heap: Vec<u32>,
    /// Per id: its index in `heap`.
    heap_pos: Vec<u32>,
}

impl<const N: usize> Default for AddressTable<N> {
    fn default() -> AddressTable<N> {
        AddressTable::with_capacity(MAX_UPSTREAMS)
    }
}

/// The same addresses with the same counts (and the same capacity, pooled
/// counts and evictions), whatever the order they got their ids in.
impl<const N: usize> PartialEq for AddressTable<N> {
    fn eq(&self, other: &AddressTable<N>) -> bool {
        let entries = |t: &AddressTable<N>| -> BTreeMap<Box<[u8]>, ([u64; N], u64)> {
            (0..t.names.len())
                .map(|i| (t.names[i].clone(), (t.counts[i], t.errors[i])))
                .collect()
        };
        self.capacity == other.capacity
            && self.pooled == other.pooled
            && self.evictions == other.evictions
            && entries(self) == entries(other)
    }
}

impl<const N: usize> Eq for AddressTable<N> {}

impl UpstreamTable {
    /// Adds `n` failures of `sig` to `id`.
    #[inline]
    pub fn add(&mut self, id: u32, sig: Signature, n: u64) {
        self.add_at(id, sig.index(), n);
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

impl<const N: usize> AddressTable<N> {
    /// A table that tracks at most `capacity` (at least 1) addresses.
    pub fn with_capacity(capacity: usize) -> AddressTable<N> {
        AddressTable {
            capacity: capacity.max(1),
            ids: FxMap::default(),
            names: Vec::new(),
            recent: [0; RECENT_SLOTS],
            counts: Vec::new(),
            totals: Vec::new(),
            errors: Vec::new(),
            pooled: [0; N],
            evictions: 0,
            heap: Vec::new(),
            heap_pos: Vec::new(),
        }
    }

    /// The id of `name`, and whether it took the id from another address
    /// (whose failures are now pooled).
    #[inline]
    pub fn intern(&mut self, name: &[u8]) -> (u32, bool) {
        let slot = recent_slot(name);
        if let Some(id) = self.recent[slot].checked_sub(1) {
            if *self.names[id as usize] == *name {
                return (id, false);
            }
        }
        let (id, evicted) = self.intern_slow(name);
        self.recent[slot] = id + 1;
        (id, evicted)
    }

    fn intern_slow(&mut self, name: &[u8]) -> (u32, bool) {
        if let Some(&id) = self.ids.get(name) {
            return (id, false);
        }
        if self.names.len() < self.capacity {
            let id = self.names.len() as u32;
            self.names.push(name.into());
            self.ids.insert(name.into(), id);
            self.counts.push([0; N]);
            self.totals.push(0);
            self.errors.push(0);
            return (id, false);
        }
        if self.heap.is_empty() {
            self.build_heap();
        }
        let id = self.heap[0];
        let i = id as usize;
        let floor = self.totals[i] + self.errors[i];
        for (p, c) in self.pooled.iter_mut().zip(&mut self.counts[i]) {
            *p += std::mem::take(c);
        }
        self.evictions += 1;
        let old = std::mem::replace(&mut self.names[i], name.into());
        self.ids.remove(&old);
        self.ids.insert(name.into(), id);
        self.totals[i] = 0;
        // Its priority stays `floor`: the heap is still in order.
        self.errors[i] = floor;
        (id, true)
    }

    /// Adds `n` to count `slot` (below `N`) of `id`.
    #[inline]
    pub fn add_at(&mut self, id: u32, slot: usize, n: u64) {
        let i = id as usize;
        self.counts[i][slot] += n;
        self.totals[i] += n;
        if !self.heap.is_empty() {
            self.sift_down(self.heap_pos[i] as usize);
        }
    }

    /// Adds another table's counts and error for `id`'s address.
    fn add_all(&mut self, id: u32, counts: &[u64; N], error: u64) {
        let i = id as usize;
        for (a, b) in self.counts[i].iter_mut().zip(counts) {
            *a += b;
        }
        self.totals[i] += counts.iter().sum::<u64>();
        self.errors[i] += error;
        if !self.heap.is_empty() {
            self.sift_down(self.heap_pos[i] as usize);
        }
    }

    /// Adds all of `other` (another thread's part of the same input).
    /// Returns, per id of `other`, its id here, or [`Self::pooled_id`] when
    /// it did not keep one.
    pub fn merge(&mut self, other: &AddressTable<N>) -> Vec<u32> {
        let mut remap: Vec<u32> = (0..other.names.len())
            .map(|o| {
                let (id, _) = self.intern(&other.names[o]);
                self.add_all(id, &other.counts[o], other.errors[o]);
                id
            })
            .collect();
        // A later name of `other` may have taken an id handed out earlier.
        for (o, id) in remap.iter_mut().enumerate() {
            if self.names[*id as usize] != other.names[o] {
                *id = self.pooled_id();
            }
        }
        for (a, b) in self.pooled.iter_mut().zip(other.pooled) {
            *a += b;
        }
        self.evictions += other.evictions;
        remap
    }

    /// The pseudo id under which pooled failures are counted per minute.
    pub fn pooled_id(&self) -> u32 {
        self.capacity as u32
    }

    fn priority(&self, id: u32) -> u64 {
        self.totals[id as usize] + self.errors[id as usize]
    }

    fn build_heap(&mut self) {
        self.heap = (0..self.names.len() as u32).collect();
        self.heap_pos = (0..self.names.len() as u32).collect();
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    /// Moves the entry at heap index `i` down after its priority grew.
    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= len {
                return;
            }
            let right = left + 1;
            let mut child = left;
            if right < len && self.priority(self.heap[right]) < self.priority(self.heap[left]) {
                child = right;
            }
            if self.priority(self.heap[child]) >= self.priority(self.heap[i]) {
                return;
            }
            self.heap.swap(i, child);
            self.heap_pos[self.heap[i] as usize] = i as u32;
            self.heap_pos[self.heap[child] as usize] = child as u32;
            i = child;
        }
    }

    /// The address of an id ([`OVERFLOW_UPSTREAM`] for the pooled id).
    pub fn bytes(&self, id: u32) -> &[u8] {
        self.names
            .get(id as usize)
            .map_or(OVERFLOW_UPSTREAM.as_bytes(), |n| n)
    }

    pub fn name(&self, id: u32) -> String {
        String::from_utf8_lossy(self.bytes(id)).into_owned()
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Failures per signature counted for `id` (ids below [`Self::len`]).
    pub fn counts(&self, id: u32) -> &[u64; N] {
        &self.counts[id as usize]
    }

    /// At most this many more failures of `id`'s address are pooled.
    pub fn error(&self, id: u32) -> u64 {
        self.errors[id as usize]
    }

    /// Failures per signature under [`OVERFLOW_UPSTREAM`].
    pub fn pooled(&self) -> &[u64; N] {
        &self.pooled
    }

    /// How many times an address lost its id to another (0: every address
    /// seen is tracked and every count is exact).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Every address with more failures than this is tracked (0 while
    /// nothing was evicted).
    pub fn listed_above(&self) -> u64 {
        if self.evictions == 0 {
            return 0;
        }
        (0..self.names.len() as u32)
            .map(|id| self.priority(id))
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Signature::UpstreamReset as R;

    #[test]
    fn ids_are_stable_through_the_recent_cache() {
        let mut t = UpstreamTable::default();
        let names: Vec<String> = (0..200)
            .map(|n| format!("10.0.{}.{}:8080", n / 7, n))
            .collect();
        let first: Vec<u32> = names.iter().map(|n| t.intern(n.as_bytes()).0).collect();
        assert_eq!(first, (0..200).collect::<Vec<u32>>());
        for (n, name) in names.iter().enumerate().rev() {
            assert_eq!(t.intern(name.as_bytes()), (n as u32, false));
            assert_eq!(t.bytes(n as u32), name.as_bytes());
        }
        assert_eq!(t.intern(b"").0, 200);
        assert_eq!(t.intern(b"a").0, 201);
        assert_eq!(t.intern(b"").0, 200);
        assert_eq!(t.len(), 202);
        assert_eq!(t.evictions(), 0);
    }

    #[test]
    fn a_heavy_address_after_many_one_offs_is_kept_exactly() {
        let mut t = UpstreamTable::with_capacity(100);
        for n in 0..1000 {
            let (id, _) = t.intern(format!("pod-{n}").as_bytes());
            t.add(id, R, 1);
        }
        let (heavy, evicted) = t.intern(b"backend");
        assert!(evicted);
        for _ in 0..5000 {
            let (id, _) = t.intern(b"backend");
            assert_eq!(id, heavy);
            t.add(id, R, 1);
        }
        // More one-offs cannot push it out.
        for n in 0..1000 {
            let (id, _) = t.intern(format!("late-{n}").as_bytes());
            t.add(id, R, 1);
        }
        assert_eq!(t.bytes(heavy), b"backend");
        assert_eq!(t.counts(heavy)[R.index()], 5000);
        assert!(t.error(heavy) <= 1000 / 100 + 1, "{}", t.error(heavy));
        // Nothing is lost: tracked plus pooled is everything.
        let tracked: u64 = (0..t.len() as u32).map(|id| t.counts(id)[R.index()]).sum();
        assert_eq!(tracked + t.pooled()[R.index()], 7000);
        assert!(t.evictions() > 0);
        assert!(t.listed_above() > 0 && t.listed_above() < 5000);
    }

    #[test]
    fn an_untracked_address_has_at_most_listed_above_failures() {
        // A skewed stream: address k appears about 2000/k times, interleaved.
        let mut t = UpstreamTable::with_capacity(20);
        let mut truth = std::collections::HashMap::new();
        for round in 0..2000u64 {
            for k in 1..200u64 {
                if round % k == 0 {
                    let name = format!("a{k}");
                    *truth.entry(name.clone()).or_insert(0u64) += 1;
                    let (id, _) = t.intern(name.as_bytes());
                    t.add(id, R, 1);
                }
            }
        }
        let bound = t.listed_above();
        for (name, n) in &truth {
            let tracked = (0..t.len() as u32).find(|&id| t.bytes(id) == name.as_bytes());
            match tracked {
                Some(id) => {
                    let c = t.counts(id)[R.index()];
                    assert!(
                        c <= *n && *n <= c + t.error(id),
                        "{name}: {c}+{} vs {n}",
                        t.error(id)
                    );
                }
                None => assert!(*n <= bound, "{name} ({n}) missing, bound {bound}"),
            }
        }
        // The heaviest address, pushed out once in the first round, is
        // back and nearly exact.
        let a1 = (0..t.len() as u32)
            .find(|&id| t.bytes(id) == b"a1")
            .unwrap();
        assert!(t.counts(a1)[R.index()] >= 1990);
    }

    #[test]
    fn merging_keeps_the_heavy_addresses_and_every_failure() {
        let mut a = UpstreamTable::with_capacity(10);
        let mut b = UpstreamTable::with_capacity(10);
        for n in 0..50 {
            let (id, _) = a.intern(format!("x{n}").as_bytes());
            a.add(id, R, 1);
            let (id, _) = b.intern(format!("y{n}").as_bytes());
            b.add(id, R, 1);
        }
        let (id, _) = b.intern(b"heavy");
        b.add(id, R, 500);
        let remap = a.merge(&b);
        let heavy = remap[id as usize];
        assert_eq!(a.bytes(heavy), b"heavy");
        assert_eq!(a.counts(heavy)[R.index()], 500);
        let tracked: u64 = (0..a.len() as u32).map(|id| a.counts(id)[R.index()]).sum();
        assert_eq!(tracked + a.pooled()[R.index()], 600);
        for (o, &mine) in remap.iter().enumerate() {
            assert!(mine == a.pooled_id() || a.bytes(mine) == b.bytes(o as u32));
        }
    }
}
