//! Reading nginx's stub_status page (facts/behaviors.md §f for its exact
//! format and what each counter means).

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StubStatus {
    pub active: u64,
    /// Client connections accepted since the master started.
    pub accepts: u64,
    pub handled: u64,
    /// Client requests since the master started.
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

impl StubStatus {
    /// Parses the body of a stub_status response.
    pub fn parse(body: &str) -> Result<StubStatus, String> {
        let mut lines = body.lines();
        let active = lines
            .next()
            .and_then(|l| l.strip_prefix("Active connections:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("no \"Active connections:\" line")?;
        if lines.next().map(str::trim) != Some("server accepts handled requests") {
            return Err("no \"server accepts handled requests\" line".to_string());
        }
        let counts: Vec<u64> = lines
            .next()
            .ok_or("no counter line")?
            .split_whitespace()
            .map(|w| w.parse::<u64>().map_err(|_| format!("bad counter {w:?}")))
            .collect::<Result<_, _>>()?;
        let [accepts, handled, requests] = counts[..] else {
            return Err("expected three counters".to_string());
        };
        let rw: Vec<u64> = lines
            .next()
            .ok_or("no Reading/Writing/Waiting line")?
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [reading, writing, waiting] = rw[..] else {
            return Err("expected Reading, Writing and Waiting".to_string());
        };
        Ok(StubStatus {
            active,
            accepts,
            handled,
            requests,
            reading,
            writing,
            waiting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exact_format() {
        let body = "Active connections: 2 \nserver accepts handled requests\n 14 7 31 \nReading: 0 Writing: 1 Waiting: 1 \n";
        let s = StubStatus::parse(body).unwrap();
        assert_eq!((s.active, s.accepts, s.handled, s.requests), (2, 14, 7, 31));
        assert_eq!((s.reading, s.writing, s.waiting), (0, 1, 1));
        assert!(StubStatus::parse("<html>").is_err());
    }
}
