//! The traffic generator: `concurrency` clients, each keeping its own
//! keep-alive connection to nginx, sending GETs and POSTs with gaps drawn
//! between `gap_min` and `gap_max`, for a fixed duration. Every request is
//! recorded (time, method, status, latency), so the phase can count statuses
//! by method, compute percentiles and draw time series.
//!
//! Clients behave like browsers on one point: a request that fails on a
//! *reused* client connection before any byte of the response arrived is sent
//! again once on a new connection (the client-side keep-alive race, which is
//! not what the lab measures). Such retries are counted.

use crate::cancel::Cancel;
use crate::http::{HttpConn, ReadError};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// When the next request of a client is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoopMode {
    /// The gap starts when the previous response has arrived.
    Closed,
    /// Requests are due at a fixed rate whatever the responses do: the k-th
    /// request of a client at `start + k × mean gap`, moved by a jitter of up
    /// to half the gap range that does not accumulate. Clients started
    /// together stay in step (bursts). A client still waiting for a response
    /// sends its next request as soon as that arrives, and counts it late.
    Open,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrafficProfile {
    pub concurrency: u32,
    /// Share of POSTs, 0.0 to 1.0; the rest are GETs.
    pub post_ratio: f64,
    #[serde(serialize_with = "ser_ms")]
    pub gap_min: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub gap_max: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
    pub mode: LoopMode,
    /// Clients start at random offsets within this window (0: all at once).
    #[serde(serialize_with = "ser_ms")]
    pub start_spread: Duration,
    pub post_body_bytes: usize,
    /// Give up on a response after this long (counted as a client error).
    #[serde(serialize_with = "ser_ms")]
    pub request_timeout: Duration,
    /// `Host` header sent with every request.
    pub host: String,
    /// Path prefix of every request; a per-request suffix is appended.
    pub path: String,
    pub seed: u64,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Default for TrafficProfile {
    fn default() -> TrafficProfile {
        TrafficProfile {
            concurrency: 4,
            post_ratio: 0.5,
            gap_min: Duration::from_millis(10),
            gap_max: Duration::from_millis(20),
            duration: Duration::from_secs(5),
            mode: LoopMode::Closed,
            start_spread: Duration::ZERO,
            post_body_bytes: 64,
            request_timeout: Duration::from_secs(10),
            host: "localhost".to_string(),
            path: "/lab".to_string(),
            seed: 1,
        }
    }
}

impl TrafficProfile {
    pub fn describe(&self) -> String {
        let mode = match self.mode {
            LoopMode::Closed => "closed loop",
            LoopMode::Open => "open loop",
        };
        format!(
            "{} clients, {:.0}% POST, gaps {}–{} ({mode}), {}",
            self.concurrency,
            self.post_ratio * 100.0,
            crate::duration::format(self.gap_min),
            crate::duration::format(self.gap_max),
            crate::duration::format(self.duration),
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(format!(
                "concurrency must be 1 to 10000, not {}",
                self.concurrency
            ));
        }
        if !(0.0..=1.0).contains(&self.post_ratio) {
            return Err(format!(
                "POST share must be between 0 and 1, not {}",
                self.post_ratio
            ));
        }
        if self.gap_min > self.gap_max {
            return Err("the minimum gap is larger than the maximum gap".to_string());
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(3600) {
            return Err("duration must be above 0 and at most 1h".to_string());
        }
        Ok(())
    }
}

/// One request as the client saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// When it was sent, from the phase start.
    pub at: Duration,
    pub method: Method,
    /// HTTP status, or `None` when no response arrived.
    pub status: Option<u16>,
    pub latency: Duration,
}

#[derive(Debug, Default)]
pub struct TrafficResult {
    pub records: Vec<RequestRecord>,
    /// Client connections the generator opened to nginx.
    pub connections_opened: u64,
    /// When each was opened, from the phase start.
    pub connection_times: Vec<Duration>,
    /// Requests re-sent after a reused client connection failed silently.
    pub client_retries: u64,
    /// Open loop: requests sent after their scheduled time.
    pub late_starts: u64,
    /// Client-side errors by kind ("timed out", "connection refused", …).
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// Runs the traffic against `target` until `duration` has passed since
/// `epoch` (or `stop`), and returns what every client recorded.
pub async fn run(
    profile: &TrafficProfile,
    target: SocketAddr,
    epoch: Instant,
    stop: &Cancel,
) -> TrafficResult {
    let end = epoch + profile.duration;
    let mut rng = fastrand::Rng::with_seed(profile.seed);
    let mut clients = tokio::task::JoinSet::new();
    for id in 0..profile.concurrency {
        let spread = profile.start_spread.as_micros() as u64;
        let offset = Duration::from_micros(if spread == 0 { 0 } else { rng.u64(0..=spread) });
        let client = Client {
            id,
            profile: profile.clone(),
            target,
            epoch,
            end,
            rng: fastrand::Rng::with_seed(rng.u64(..)),
            stop: stop.clone(),
        };
        clients.spawn(client.run(epoch + offset));
    }
    let mut total = TrafficResult::default();
    while let Some(done) = clients.join_next().await {
        if let Ok(r) = done {
            total.records.extend(r.records);
            total.connections_opened += r.connections_opened;
            total.connection_times.extend(r.connection_times);
            total.client_retries += r.client_retries;
            total.late_starts += r.late_starts;
            for (k, v) in r.errors {
                *total.errors.entry(k).or_default() += v;
            }
        }
    }
    total.records.sort_by_key(|r| r.at);
    total
}

struct Client {
    id: u32,
    profile: TrafficProfile,
    target: SocketAddr,
    epoch: Instant,
    end: Instant,
    rng: fastrand::Rng,
    stop: Cancel,
}

enum Outcome {
    Response(u16),
    Failed(String),
}

impl Client {
    async fn run(mut self, first: Instant) -> TrafficResult {
        let mut result = TrafficResult::default();
        let mut conn: Option<HttpConn> = None;
        let mut next = first;
        let mut seq: u64 = 0;
        let mean_gap = (self.profile.gap_min + self.profile.gap_max) / 2;
        loop {
            if next >= self.end {
                break;
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = sleep_until(next) => {}
            }
            let method = if self.rng.f64() < self.profile.post_ratio {
                Method::Post
            } else {
                Method::Get
            };
            seq += 1;
            let sent = Instant::now();
            let stop = self.stop.clone();
            let outcome = tokio::select! {
                _ = stop.cancelled() => break,
                o = self.exchange(&mut conn, method, seq, &mut result) => o,
            };
            let latency = sent.elapsed();
            let status = match outcome {
                Outcome::Response(s) => Some(s),
                Outcome::Failed(kind) => {
                    *result.errors.entry(kind).or_default() += 1;
                    None
                }
            };
            result.records.push(RequestRecord {
                at: sent - self.epoch,
                method,
                status,
                latency,
            });
            let gap = self.gap();
            next = match self.profile.mode {
                LoopMode::Closed => Instant::now() + gap,
                LoopMode::Open => {
                    // The drawn gap's distance from the mean is the jitter.
                    let base = first + mean_gap * seq as u32;
                    let due = if gap >= mean_gap {
                        base + (gap - mean_gap)
                    } else {
                        base - (mean_gap - gap)
                    };
                    let now = Instant::now();
                    if due < now {
                        result.late_starts += 1;
                        now
                    } else {
                        due
                    }
                }
            };
        }
        result
    }

    fn gap(&mut self) -> Duration {
        let lo = self.profile.gap_min.as_micros() as u64;
        let hi = self.profile.gap_max.as_micros() as u64;
        Duration::from_micros(if hi <= lo { lo } else { self.rng.u64(lo..=hi) })
    }

    fn request_bytes(&self, method: Method, seq: u64) -> Vec<u8> {
        let p = &self.profile;
        let target = format!("{}/{}/{}", p.path.trim_end_matches('/'), self.id, seq);
        match method {
            Method::Get => format!(
                "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: upkeep-lab\r\nAccept: */*\r\n\r\n",
                p.host
            )
            .into_bytes(),
            Method::Post => {
                let mut req = format!(
                    "POST {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: upkeep-lab\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    p.host, p.post_body_bytes
                )
                .into_bytes();
                req.resize(req.len() + p.post_body_bytes, b'x');
                req
            }
        }
    }

    /// Sends one request and reads its response, retrying once on a new
    /// connection if a reused one turned out to be closed.
    async fn exchange(
        &mut self,
        conn: &mut Option<HttpConn>,
        method: Method,
        seq: u64,
        result: &mut TrafficResult,
    ) -> Outcome {
        let deadline = Instant::now() + self.profile.request_timeout;
        let request = self.request_bytes(method, seq);
        for attempt in 0..2 {
            let reused = conn.is_some();
            if conn.is_none() {
                match timeout_at(deadline, TcpStream::connect(self.target)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        result.connections_opened += 1;
                        result.connection_times.push(self.epoch.elapsed());
                        *conn = Some(HttpConn::new(stream));
                    }
                    Ok(Err(e)) => return Outcome::Failed(format!("connect: {}", e.kind())),
                    Err(_) => return Outcome::Failed("connect: timed out".to_string()),
                }
            }
            let c = conn.as_mut().expect("connected above");
            let received_before = c.received;
            let sent = c.write_all(&request, deadline).await;
            let response = match sent {
                Ok(()) => read_response(c, method, deadline).await,
                Err(e) => Err(e),
            };
            match response {
                Ok((status, keep)) => {
                    if !keep {
                        *conn = None;
                    }
                    return Outcome::Response(status);
                }
                Err(err) => {
                    let nothing_back = c.received == received_before;
                    *conn = None;
                    let silent_close = matches!(err, ReadError::ClosedBeforeMessage)
                        || matches!(&err, ReadError::Io(e) if crate::http::is_reset(e));
                    if attempt == 0 && reused && nothing_back && silent_close {
                        result.client_retries += 1;
                        continue;
                    }
                    return Outcome::Failed(error_kind(&err));
                }
            }
        }
        Outcome::Failed("closed twice".to_string())
    }
}

async fn read_response(
    c: &mut HttpConn,
    method: Method,
    deadline: Instant,
) -> Result<(u16, bool), ReadError> {
    let head = c.read_head(deadline).await?;
    let status: u16 = head
        .second
        .parse()
        .map_err(|_| ReadError::Malformed(format!("status {:?}", head.second)))?;
    let (_, close_delimited) = c
        .read_response_body(method.as_str(), &head, deadline)
        .await?;
    let keep = !close_delimited && !head.connection_has("close") && head.first != "HTTP/1.0";
    Ok((status, keep))
}

fn error_kind(err: &ReadError) -> String {
    match err {
        ReadError::ClosedBeforeMessage => "closed without response".to_string(),
        ReadError::Truncated => "truncated response".to_string(),
        ReadError::Timeout => "timed out".to_string(),
        ReadError::Malformed(_) => "malformed response".to_string(),
        ReadError::Io(e) => format!("{}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendProfile;
    use crate::test_support::{rt, start_backend};

    #[test]
    fn clients_keep_their_connections_and_count_by_method() {
        rt().block_on(async {
            let (b, stop, _tasks) = start_backend(BackendProfile::keepalive("k", None)).await;
            let profile = TrafficProfile {
                concurrency: 3,
                post_ratio: 0.5,
                gap_min: Duration::from_millis(5),
                gap_max: Duration::from_millis(10),
                duration: Duration::from_millis(400),
                ..TrafficProfile::default()
            };
            let r = run(&profile, b.addr, Instant::now(), &stop).await;
            assert!(r.records.len() > 20, "{}", r.records.len());
            assert!(r.records.iter().all(|x| x.status == Some(200)));
            assert!(r.records.iter().any(|x| x.method == Method::Get));
            assert!(r.records.iter().any(|x| x.method == Method::Post));
            assert_eq!(
                r.connections_opened, 3,
                "one kept-alive connection per client"
            );
            assert!(r.records.windows(2).all(|w| w[0].at <= w[1].at));
            stop.cancel();
        });
    }

    #[test]
    fn clients_reconnect_when_told_to_close() {
        rt().block_on(async {
            let close = BackendProfile {
                always_close: true,
                ..BackendProfile::keepalive("close", None)
            };
            let (b, stop, _tasks) = start_backend(close).await;
            let profile = TrafficProfile {
                concurrency: 1,
                gap_min: Duration::from_millis(5),
                gap_max: Duration::from_millis(5),
                duration: Duration::from_millis(200),
                ..TrafficProfile::default()
            };
            let r = run(&profile, b.addr, Instant::now(), &stop).await;
            assert!(r.records.len() > 3);
            assert_eq!(r.connections_opened, r.records.len() as u64);
            assert_eq!(r.client_retries, 0);
            stop.cancel();
        });
    }

    #[test]
    fn open_loop_keeps_its_rate_and_clients_in_step() {
        rt().block_on(async {
            let (b, stop, _tasks) = start_backend(BackendProfile::keepalive("k", None)).await;
            let profile = TrafficProfile {
                concurrency: 2,
                post_ratio: 0.0,
                gap_min: Duration::from_millis(90),
                gap_max: Duration::from_millis(110),
                mode: LoopMode::Open,
                duration: Duration::from_millis(1000),
                ..TrafficProfile::default()
            };
            let r = run(&profile, b.addr, Instant::now(), &stop).await;
            // Due at 0, 100, …, 900 ms (±10 ms): ten each.
            assert!((18..=22).contains(&r.records.len()), "{}", r.records.len());
            // The k-th requests of both clients go out within the jitter.
            let mut at: Vec<Duration> = r.records.iter().map(|x| x.at).collect();
            at.sort();
            for pair in at.chunks(2) {
                if let [a, b] = pair {
                    assert!(*b - *a <= Duration::from_millis(40), "{a:?} {b:?}");
                }
            }
            stop.cancel();
        });
    }

    #[test]
    fn nothing_listening_is_a_client_error_not_a_hang() {
        rt().block_on(async {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let profile = TrafficProfile {
                concurrency: 1,
                duration: Duration::from_millis(100),
                ..TrafficProfile::default()
            };
            let r = run(&profile, addr, Instant::now(), &Cancel::new()).await;
            assert!(!r.records.is_empty());
            assert!(r.records.iter().all(|x| x.status.is_none()));
            assert!(
                r.errors.keys().all(|k| k.starts_with("connect")),
                "{:?}",
                r.errors
            );
        });
    }
}
