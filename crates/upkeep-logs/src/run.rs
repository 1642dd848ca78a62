//! Running a whole analysis: every input in turn, each plain file split
//! across threads when asked, failures fed to the access-log join.

use crate::analysis::{Analysis, InputReport};
use crate::classify::Classified;
use crate::error_line::ErrorLine;
use crate::input::{Input, Source};
use crate::join::Joiner;
use crate::reader::scan_stream;
use crate::scan::{EventSink, Scanner, TimeWindow};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Files smaller than this are not worth splitting.
const PARALLEL_MIN_BYTES: u64 = 8 << 20;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub window: TimeWindow,
    /// Threads per plain file (1 = single-threaded). Ignored while joining an
    /// access log, which needs the error log in order.
    pub threads: usize,
    /// Counts raw bytes read, for a progress bar.
    pub progress: Option<Arc<AtomicU64>>,
    /// Most per-minute rows kept (0: [`crate::minutes::DEFAULT_MAX_ROWS`]);
    /// beyond, minutes are merged into wider buckets. Each thread of a
    /// split file keeps its own rows until they are merged.
    pub max_minute_rows: usize,
}

impl Options {
    /// An empty analysis with these options' limits.
    pub fn new_analysis(&self) -> Analysis {
        let mut a = Analysis::default();
        if self.max_minute_rows > 0 {
            a.per_minute.set_max_rows(self.max_minute_rows);
        }
        a
    }
}

/// Classifies and aggregates `inputs`; with a joiner, also matches failures
/// with the access log.
pub fn analyze(inputs: &[Input], opts: &Options, mut joiner: Option<Joiner>) -> Analysis {
    let mut analysis = opts.new_analysis();
    for input in inputs {
        let parallel_path = match &input.source {
            Source::File(p) if joiner.is_none() && opts.threads > 1 => Some(p),
            _ => None,
        };
        if let Some(path) = parallel_path {
            if input.size().unwrap_or(0) >= PARALLEL_MIN_BYTES && !is_gzip(path) {
                match scan_file_parallel(path, &input.name, opts) {
                    Ok(part) => analysis.merge(part, 0),
                    Err(e) => analysis.inputs.push(InputReport {
                        name: input.name.clone(),
                        error: Some(e.to_string()),
                        ..InputReport::default()
                    }),
                }
                continue;
            }
        }
        let report = match joiner.as_mut() {
            Some(j) => scan_input(
                input,
                opts,
                &mut JoinSink {
                    analysis: &mut analysis,
                    joiner: j,
                },
            ),
            None => scan_input(input, opts, &mut analysis),
        };
        analysis.inputs.push(report);
    }
    if let Some(j) = joiner {
        let mut report = j.finish();
        report.with_error_log = !inputs.is_empty();
        analysis.access = Some(report);
    }
    analysis
}

/// Scans one input sequentially into `sink`.
pub fn scan_input<S: EventSink>(input: &Input, opts: &Options, sink: &mut S) -> InputReport {
    let mut report = InputReport {
        name: input.name.clone(),
        ..InputReport::default()
    };
    let opened = match input.open(opts.progress.clone()) {
        Ok(o) => o,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.gzip = opened.gzip;
    let mut scanner = Scanner::new(opts.window);
    let result = scan_stream(opened.reader, &mut scanner, sink);
    report.stats = scanner.stats;
    if let Err(e) = result {
        report.error = Some(format!("{e} (after {} lines)", report.stats.lines));
    }
    report
}

struct JoinSink<'a> {
    analysis: &'a mut Analysis,
    joiner: &'a mut Joiner,
}

impl EventSink for JoinSink<'_> {
    fn on_signature(&mut self, event: &Classified<'_>) {
        self.analysis.record(event);
        self.joiner.on_event(event);
    }

    fn on_other_upstream(&mut self, line: &ErrorLine<'_>) {
        self.analysis.record_other(line);
    }
}

fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// Splits a plain file into `opts.threads` ranges that start at line
/// starts, scans them in parallel and merges the results in order (so line
/// numbers in messages stay exact).
pub fn scan_file_parallel(path: &Path, name: &str, opts: &Options) -> io::Result<Analysis> {
    let size = std::fs::metadata(path)?.len();
    let bounds = line_aligned_bounds(path, size, opts.threads.max(1))?;
    let parts: Vec<io::Result<Analysis>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0], w[1]);
                let progress = opts.progress.clone();
                let window = opts.window;
                let mut part = opts.new_analysis();
                scope.spawn(move || -> io::Result<Analysis> {
                    let mut file = File::open(path)?;
                    file.seek(SeekFrom::Start(start))?;
                    let reader = Progress {
                        inner: file.take(end - start),
                        progress,
                    };
                    let mut scanner = Scanner::new(window);
                    let result = scan_stream(reader, &mut scanner, &mut part);
                    part.inputs.push(InputReport {
                        name: name.to_string(),
                        stats: scanner.stats,
                        error: result.err().map(|e| e.to_string()),
                        gzip: false,
                    });
                    Ok(part)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a scanning thread panicked")))
            })
            .collect()
    });
    let mut total = opts.new_analysis();
    let mut line_offset = 0;
    for part in parts {
        let part = part?;
        let lines = part.inputs.first().map_or(0, |i| i.stats.lines);
        total.merge(part, line_offset);
        line_offset += lines;
    }
    Ok(total)
}

/// `threads + 1` offsets: 0, then each split point moved forward to just
/// after a `\n`, then `size`. Duplicates (tiny files, huge lines) collapse.
fn line_aligned_bounds(path: &Path, size: u64, threads: usize) -> io::Result<Vec<u64>> {
    let mut file = File::open(path)?;
    let mut bounds = vec![0u64];
    let mut buf = vec![0u8; 64 * 1024];
    for k in 1..threads as u64 {
        let guess = (size * k / threads as u64).max(*bounds.last().expect("non-empty"));
        let mut at = guess;
        file.seek(SeekFrom::Start(at))?;
        let cut = loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break size;
            }
            if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
                break at + i as u64 + 1;
            }
            at += n as u64;
        };
        if cut > *bounds.last().expect("non-empty") && cut < size {
            bounds.push(cut);
        }
    }
    bounds.push(size);
    Ok(bounds)
}

struct Progress<R> {
    inner: R,
    progress: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = &self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::Signature;
    use std::io::Write;

    #[test]
    fn parallel_and_sequential_agree_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.log");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        for i in 0..40_000u32 {
            let m = i % 60;
            match i % 7 {
                0 => writeln!(f, "2026/11/23 14:{m:02}:00 [error] 1#0: *{i} upstream prematurely closed connection while reading response header from upstream, client: 10.0.0.1, server: a, request: \"GET /x HTTP/1.1\", upstream: \"http://10.0.1.{}:80/x\", host: \"a\"", i % 3),
                1 => writeln!(f, "garbage {i}"),
                _ => writeln!(f, "2026/11/23 14:{m:02}:00 [info] 1#0: *{i} client 10.0.0.1 closed keepalive connection"),
            }
            .unwrap();
        }
        drop(f);
        let input = Input::file(&path);
        let seq = analyze(
            std::slice::from_ref(&input),
            &Options {
                threads: 1,
                ..Options::default()
            },
            None,
        );
        let par = scan_file_parallel(
            &path,
            &input.name,
            &Options {
                threads: 3,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(seq.count(Signature::UpstreamPrematurelyClosed), 5715);
        assert_eq!(seq.counts, par.counts);
        assert_eq!(seq.inputs, par.inputs);
        assert_eq!(seq.per_minute_rows(), par.per_minute_rows());
        assert_eq!(seq.top_upstreams(10), par.top_upstreams(10));
        assert_eq!(seq.inputs[0].stats.first_unparsed, Some(2));
    }
}
