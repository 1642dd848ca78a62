//! An order-keeping parallel map for the CPU-bound passes over large inputs
//! (rules over a model, rendering thousands of findings). Where threads
//! cannot be started (wasm32) the work runs on the calling thread, so the
//! crate stays free of platform assumptions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// `items.iter().map(f).collect()`, computed on up to all cores when
/// `parallel` is true. Items are handed out one at a time from a shared
/// counter, so uneven item costs still balance; results keep the items'
/// order.
pub fn map_ordered<T, R, F>(items: &[T], parallel: bool, f: F) -> Vec<R>
where
    T: Sync,
    R: Send + Sync,
    F: Fn(&T) -> R + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(items.len()));
    if !parallel || threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<OnceLock<R>> = items.iter().map(|_| OnceLock::new()).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        // Each index is taken exactly once, so the cell is always empty here.
        let _ = results[i].set(f(item));
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // A thread that cannot be started leaves its share to the others.
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
        }
        work();
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("every item was mapped"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::map_ordered;

    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = map_ordered(&items, true, |x| x * x);
        assert_eq!(squares, items.iter().map(|x| x * x).collect::<Vec<_>>());
        assert_eq!(map_ordered(&items, false, |x| x + 1)[999], 1000);
        assert!(map_ordered(&[] as &[u64], true, |x| *x).is_empty());
    }
}
