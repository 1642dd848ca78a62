//! Reading and parsing the files of a glob include ahead of the depth-first
//! walk, on several threads: a `conf.d/*.conf` with hundreds of files parses
//! in parallel, while files still get their ids in nginx's order.
//!
//! Each file is parsed under the id it will get if the files before it in
//! the glob include nothing themselves (the usual case). When the walk
//! reaches a file and its id turns out different, the file is parsed again
//! under the right id, so the result never depends on the guess.

use crate::Loader;
use std::collections::HashMap;
use std::io;
use upkeep_syntax::{parse, FileId, SourceFile, SyntaxError, SyntaxTree};

/// Below this many bytes in a glob, threads cost more than they save.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

pub(crate) enum Prepared {
    Unreadable(io::Error),
    Parsed {
        file: SourceFile,
        tree: Result<SyntaxTree, SyntaxError>,
    },
}

#[derive(Default)]
pub(crate) struct ReadAhead {
    /// By normalized path.
    ready: HashMap<String, Prepared>,
}

impl ReadAhead {
    /// Read every path not yet loaded (`is_new`) and parse them, ids
    /// guessed from `next_id` on.
    pub(crate) fn prepare(
        &mut self,
        paths: &[String],
        key: impl Fn(&str) -> String,
        is_new: impl Fn(&str) -> bool,
        loader: &dyn Loader,
        next_id: u32,
    ) {
        let mut files = Vec::new();
        let mut id = next_id;
        for path in paths {
            let k = key(path);
            if !is_new(&k) || self.ready.contains_key(&k) {
                continue;
            }
            match loader.read_shared(path) {
                Ok(bytes) => {
                    files.push((k, SourceFile::new(FileId(id), path.clone(), bytes)));
                    id += 1;
                }
                Err(e) => {
                    self.ready.insert(k, Prepared::Unreadable(e));
                }
            }
        }
        for ((k, file), tree) in parse_all(files) {
            self.ready.insert(k, Prepared::Parsed { file, tree });
        }
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Prepared> {
        self.ready.remove(key)
    }
}

type Job = (String, SourceFile);

#[cfg(not(target_arch = "wasm32"))]
fn parse_all(files: Vec<Job>) -> Vec<(Job, Result<SyntaxTree, SyntaxError>)> {
    let bytes: usize = files.iter().map(|(_, f)| f.text.len()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    if threads < 2 || bytes < PARALLEL_MIN_BYTES {
        return parse_sequentially(files);
    }
    // Contiguous groups of about equal size, one per thread.
    let mut groups: Vec<Vec<Job>> = Vec::new();
    let per_group = bytes.div_ceil(threads);
    let mut current = Vec::new();
    let mut current_bytes = 0;
    for job in files {
        current_bytes += job.1.text.len();
        current.push(job);
        if current_bytes >= per_group {
            groups.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    // Each group waits in a slot: its thread takes it, or, if the thread
    // cannot be started, this one does.
    let slots: Vec<std::sync::Mutex<Option<Vec<Job>>>> = groups
        .into_iter()
        .map(|g| std::sync::Mutex::new(Some(g)))
        .collect();
    let take = |slot: &std::sync::Mutex<Option<Vec<Job>>>| {
        slot.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .unwrap_or_default()
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = slots
            .iter()
            .map(|slot| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || parse_sequentially(take(slot)))
                    .ok()
            })
            .collect();
        let mut results = Vec::new();
        for (slot, handle) in slots.iter().zip(handles) {
            match handle {
                Some(h) => match h.join() {
                    Ok(r) => results.extend(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                None => results.extend(parse_sequentially(take(slot))),
            }
        }
        results
    })
}

#[cfg(target_arch = "wasm32")]
fn parse_all(files: Vec<Job>) -> Vec<(Job, Result<SyntaxTree, SyntaxError>)> {
    parse_sequentially(files)
}

fn parse_sequentially(files: Vec<Job>) -> Vec<(Job, Result<SyntaxTree, SyntaxError>)> {
    files
        .into_iter()
        .map(|job| {
            let tree = parse(&job.1);
            (job, tree)
        })
        .collect()
}
