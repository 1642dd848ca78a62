//! One phase of a lab run: start the backends and relays, render and start
//! nginx, drive the traffic, measure, and tear everything down again.
//!
//! Teardown is by ownership: the nginx instance (stopped through its pid
//! file), the async runtime (relays, backends, clients), the TIME_WAIT sampler
//! and the namespace are values whose drops clean up, declared so that nginx
//! goes first. An error or a Ctrl-C anywhere takes the same path.

use crate::backend::{Backend, BackendCounters};
use crate::cancel::Cancel;
use crate::error::{harness, LabError};
use crate::leftovers;
use crate::measure::error_log;
use crate::measure::percentile::nearest_rank;
use crate::measure::time_wait::SocketTables;
use crate::netns::{self, LabNamespace};
use crate::plan::{ConfigFile, LabPlan, Network, Phase};
use crate::relay::Relay;
use crate::render::{render, Addresses};
use crate::report::{Bucket, Latency, PhaseResult, Timeline};
use crate::source_map;
use crate::traffic::{self, TrafficResult};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use upkeep_host::stub_status::StubStatus;
use upkeep_nginx::{NginxBinary, NginxInstance, Prefix};

/// How often the TIME_WAIT census runs.
const TIME_WAIT_SAMPLE: Duration = Duration::from_millis(100);
/// How long nginx gets to start accepting connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Fixed ports inside the lab's own namespace (nothing else lives there).
const NS_LISTEN_PORT: u16 = 8080;
const NS_STATUS_PORT: u16 = 8081;
const NS_FIRST_BACKEND_PORT: u16 = 9001;

pub struct PhaseEnv<'a> {
    pub nginx: &'a NginxBinary,
    pub plan: &'a LabPlan,
    pub cancel: &'a Cancel,
    pub log: &'a dyn Fn(&str),
    /// Copy the phase's config and logs here before the prefix is removed.
    pub keep_dir: Option<&'a Path>,
    /// The binary has the stub_status module (`nginx -V`).
    pub stub_status: bool,
}

/// Runs one phase. `prepare` turns the rendered config into the one to run
/// (identity for "before", `upkeep fix` for "after").
pub fn run_phase(
    env: &PhaseEnv<'_>,
    phase: Phase,
    prepare: &mut dyn FnMut(Vec<ConfigFile>) -> Result<Vec<ConfigFile>, LabError>,
) -> Result<PhaseResult, LabError> {
    let plan = env.plan;
    let log = env.log;
    // Declaration order is teardown order reversed: nginx (declared last)
    // stops first, the namespace goes last.
    let namespace = match plan.network {
        Network::Loopback => None,
        Network::Namespace { port_range } => {
            let ns = LabNamespace::create(port_range).map_err(|e| LabError::Skipped(e.0))?;
            log(&format!(
                "{}: network namespace {} (ip_local_port_range {} inside it only)",
                phase.as_str(),
                ns.name(),
                ns.port_range().unwrap_or_default()
            ));
            Some(Arc::new(ns))
        }
    };
    let runtime = build_runtime(namespace.clone())?;
    let stop = env.cancel.child();
    // Named after this process, so that a later run can remove it if this
    // one is killed before it can (crate::leftovers).
    let prefix = Prefix::named(&leftovers::own_name_prefix())
        .map_err(harness("creating the nginx prefix"))?;

    // Backends and relays.
    let servers = runtime
        .block_on(runtime.spawn(start_servers(
            plan.clone(),
            namespace.is_some(),
            stop.clone(),
        )))
        .map_err(harness("starting backends"))??;
    // Config: rendered with this phase's addresses, prepared (fixed), and
    // checked by `nginx -t` where nginx will run. A port picked free can be
    // taken by someone else before nginx binds it: then pick again.
    let scratch = tempfile::Builder::new()
        .prefix(&leftovers::own_name_prefix())
        .tempdir()
        .map_err(harness("creating a scratch dir"))?;
    let mut attempt = 0;
    let (listen, status, config, conf_path) = loop {
        attempt += 1;
        let (listen, status) = match plan.network {
            Network::Loopback => (
                loopback(upkeep_nginx::free_port().map_err(harness("picking a port"))?),
                loopback(upkeep_nginx::free_port().map_err(harness("picking a port"))?),
            ),
            Network::Namespace { .. } => (
                SocketAddr::new(IpAddr::V4(netns::FRONT_ADDR), NS_LISTEN_PORT),
                SocketAddr::new(IpAddr::V4(netns::FRONT_ADDR), NS_STATUS_PORT),
            ),
        };
        let addresses = Addresses {
            listen,
            status: env.stub_status.then_some(status),
            status_path: plan.status_path.clone(),
            servers: servers.nginx_targets.clone(),
            temp_paths: prefix.http_temp_paths(),
        };
        let rendered = render(&plan.files, &addresses).map_err(LabError::Usage)?;
        let config = prepare(rendered)?;
        for file in &config {
            prefix
                .write(&file.path, &file.text)
                .map_err(harness("writing the config"))?;
        }
        let conf_path = prefix.path().join(&config[0].path);
        // `nginx -t` binds the listen addresses too: run it where nginx will run.
        let test = in_namespace(namespace.as_deref(), || {
            env.nginx
                .test_config(&conf_path, prefix.path(), scratch.path())
        })
        .map_err(harness("running nginx -t"))?;
        if test.ok {
            break (listen, status, config, conf_path);
        }
        if attempt < 3 && test.output.contains("Address already in use") {
            continue;
        }
        return Err(LabError::ConfigRejected {
            phase: phase.as_str(),
            // The prefix is gone when this is read: name the user's files.
            output: source_map::to_user_files(&test.output, prefix.path(), &config, &plan.sources),
        });
    };

    // nginx, started from inside the namespace when there is one.
    log(&format!("{}: starting nginx on {listen}", phase.as_str()));
    let mut instance = start_nginx(env.nginx, &prefix, &conf_path, namespace.as_deref())?;
    runtime
        .block_on(runtime.spawn(wait_listening(listen, READY_TIMEOUT)))
        .map_err(harness("waiting for nginx"))?
        .map_err(|e| {
            LabError::Harness(format!(
                "nginx does not accept connections on {listen}: {e}"
            ))
        })?;

    // Measure while the traffic runs.
    let mut lab_ports: HashSet<u16> = [listen.port(), status.port()].into_iter().collect();
    lab_ports.extend(servers.ports.iter().copied());
    let sampler = TimeWaitSampler::start(SocketTables::of_process(instance.pid()), lab_ports);
    let epoch = Instant::now();
    log(&format!(
        "{}: traffic: {}",
        phase.as_str(),
        plan.traffic.describe()
    ));
    let traffic_result = runtime
        .block_on(runtime.spawn({
            let (profile, stop) = (plan.traffic.clone(), stop.clone());
            async move {
                traffic::run(
                    &profile,
                    listen,
                    tokio::time::Instant::from_std(epoch),
                    &stop,
                )
                .await
            }
        }))
        .map_err(harness("running the traffic"))?;
    let elapsed = epoch.elapsed();
    let mut warnings = Vec::new();
    let stub = if env.cancel.is_cancelled() {
        None
    } else if !env.stub_status {
        warnings
            .push("this nginx has no stub_status module: no accepts/requests counters".to_string());
        None
    } else {
        let path = plan.status_path.clone();
        match runtime.block_on(runtime.spawn(fetch_stub_status(status, path))) {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                warnings.push(format!("stub_status at {status}: {e}"));
                None
            }
            Err(e) => {
                warnings.push(format!("stub_status: {e}"));
                None
            }
        }
    };
    let time_wait = sampler.finish();

    // Teardown: nginx first (pid file), then relays and backends.
    let nginx_pid = instance.pid();
    if let Err(e) = instance.stop() {
        warnings.push(e.to_string());
    }
    drop(instance);
    stop.cancel();
    let mut tasks = servers.tasks;
    runtime.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    });
    runtime.shutdown_timeout(Duration::from_secs(2));

    // Logs.
    let error_log_path = prefix.error_log();
    let signatures = error_log::count_signatures(&error_log_path)
        .map_err(|e| LabError::Harness(format!("reading {}: {e}", error_log_path.display())))?;
    let nginx_retried = count_retried(&prefix.access_log());
    if let Some(dir) = env.keep_dir {
        keep_files(dir, phase, &prefix, &config, &mut warnings);
    }

    let accept_times: Vec<Instant> = servers
        .counters
        .iter()
        .flat_map(|c| c.accept_times.lock().map(|t| t.clone()).unwrap_or_default())
        .collect();
    Ok(summarize(SummaryInput {
        phase,
        traffic: traffic_result,
        accept_times,
        epoch,
        elapsed,
        planned: plan.traffic.duration,
        time_wait,
        signatures,
        nginx_retried,
        stub,
        config,
        nginx_pid,
        namespace: namespace.as_ref().map(|ns| ns.name().to_string()),
        warnings,
    }))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

fn build_runtime(ns: Option<Arc<LabNamespace>>) -> Result<tokio::runtime::Runtime, LabError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    if let Some(ns) = ns {
        // Every runtime thread lives in the namespace, so every socket the
        // backends, relays and clients open is created there.
        builder.on_thread_start(move || {
            if let Err(e) = ns.enter_current_thread() {
                eprintln!("upkeep lab: cannot enter namespace {}: {e}", ns.name());
                std::process::abort();
            }
        });
    }
    builder
        .build()
        .map_err(harness("starting the async runtime"))
}

struct Servers {
    /// Slot key -> the address nginx must connect to (relay or backend).
    nginx_targets: HashMap<String, SocketAddr>,
    counters: Vec<Arc<BackendCounters>>,
    /// Every port the backends and relays listen on.
    ports: Vec<u16>,
    tasks: JoinSet<()>,
}

async fn start_servers(
    plan: LabPlan,
    in_namespace: bool,
    stop: Cancel,
) -> Result<Servers, LabError> {
    let mut tasks = JoinSet::new();
    let mut out = Servers {
        nginx_targets: HashMap::new(),
        counters: Vec::new(),
        ports: Vec::new(),
        tasks: JoinSet::new(),
    };
    for (i, slot) in plan.servers.iter().enumerate() {
        let bind = if in_namespace {
            SocketAddr::new(
                IpAddr::V4(netns::BACKEND_ADDR),
                NS_FIRST_BACKEND_PORT + i as u16,
            )
        } else {
            loopback(0)
        };
        let backend = Backend::start(bind, slot.profile.clone(), stop.clone(), &mut tasks)
            .await
            .map_err(|e| {
                LabError::Harness(format!("backend for {} on {bind}: {e}", slot.upstream))
            })?;
        out.ports.push(backend.addr.port());
        out.counters.push(backend.counters.clone());
        let target = match plan.relay_delay {
            None => backend.addr,
            Some(delay) => {
                let relay =
                    Relay::start(loopback(0), backend.addr, delay, stop.clone(), &mut tasks)
                        .await
                        .map_err(harness("starting a relay"))?;
                out.ports.push(relay.addr.port());
                relay.addr
            }
        };
        out.nginx_targets.insert(slot.key.clone(), target);
    }
    out.tasks = tasks;
    Ok(out)
}

fn start_nginx(
    binary: &NginxBinary,
    prefix: &Prefix,
    conf: &Path,
    ns: Option<&LabNamespace>,
) -> Result<NginxInstance, LabError> {
    in_namespace(ns, || NginxInstance::start(binary, prefix, conf))
        .map_err(|e| LabError::Harness(format!("starting nginx: {e}")))
}

/// Runs `f` on a thread inside `ns` (or right here without one). A process
/// inherits the network namespace of the thread that spawns it, so nginx
/// started this way lives in the namespace.
fn in_namespace<T: Send>(
    ns: Option<&LabNamespace>,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    match ns {
        None => f(),
        Some(ns) => std::thread::scope(|s| {
            s.spawn(|| {
                ns.enter_current_thread()?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
        }),
    }
}

async fn wait_listening(addr: SocketAddr, limit: Duration) -> std::io::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn fetch_stub_status(addr: SocketAddr, path: String) -> Result<StubStatus, String> {
    use crate::http::HttpConn;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let stream = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let mut conn = HttpConn::new(stream);
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes(), deadline)
        .await
        .map_err(|e| e.to_string())?;
    let head = conn.read_head(deadline).await.map_err(|e| e.to_string())?;
    let (body, _) = conn
        .read_response_body("GET", &head, deadline)
        .await
        .map_err(|e| e.to_string())?;
    if head.second != "200" {
        return Err(format!("status {}", head.second));
    }
    StubStatus::parse(&String::from_utf8_lossy(&body))
}

/// Samples TIME_WAIT counts on a thread of its own until finished.
struct TimeWaitSampler {
    stop: Cancel,
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TimeWaitSampler {
    fn start(tables: SocketTables, ports: HashSet<u16>) -> TimeWaitSampler {
        let stop = Cancel::new();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || loop {
            if let Ok(n) = tables.count_time_wait(&ports) {
                if let Ok(mut v) = out.lock() {
                    v.push((Instant::now(), n));
                }
            }
            if !s.sleep(TIME_WAIT_SAMPLE) {
                return;
            }
        });
        TimeWaitSampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<(Instant, u64)> {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for TimeWaitSampler {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Requests whose access-log `$upstream_status` lists more than one attempt.
/// The lab's built-in configs log `"$upstream_status"` as the last field of
/// the `lab` format; configs without that log give `None`.
fn count_retried(access_log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(access_log).ok()?;
    let mut any = false;
    let mut n = 0;
    for line in text.lines() {
        let Some(us) = line.rsplit('"').nth(1) else {
            continue;
        };
        if !line.starts_with("lab ") {
            continue;
        }
        any = true;
        if us.contains(',') {
            n += 1;
        }
    }
    any.then_some(n)
}

fn keep_files(
    dir: &Path,
    phase: Phase,
    prefix: &Prefix,
    config: &[ConfigFile],
    warnings: &mut Vec<String>,
) {
    let logs: Vec<(String, Vec<u8>)> = [prefix.error_log(), prefix.access_log()]
        .iter()
        .filter_map(|log| {
            let name = log.file_name()?.to_string_lossy().into_owned();
            std::fs::read(log).ok().map(|text| (name, text))
        })
        .collect();
    let files: Vec<crate::keep::Kept<'_>> = config
        .iter()
        .map(|f| crate::keep::Kept {
            path: &f.path,
            text: f.text.as_bytes(),
        })
        .chain(
            logs.iter()
                .map(|(name, text)| crate::keep::Kept { path: name, text }),
        )
        .collect();
    if let Err(e) = crate::keep::keep_phase(dir, phase.as_str(), &files) {
        warnings.push(format!(
            "keeping files in {}: {e}",
            dir.join(phase.as_str()).display()
        ));
    }
}

struct SummaryInput {
    phase: Phase,
    traffic: TrafficResult,
    accept_times: Vec<Instant>,
    epoch: Instant,
    elapsed: Duration,
    planned: Duration,
    time_wait: Vec<(Instant, u64)>,
    signatures: error_log::SignatureCounts,
    nginx_retried: Option<u64>,
    stub: Option<StubStatus>,
    config: Vec<ConfigFile>,
    nginx_pid: i32,
    namespace: Option<String>,
    warnings: Vec<String>,
}

fn status_key(status: Option<u16>) -> String {
    status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "error".to_string())
}

fn summarize(input: SummaryInput) -> PhaseResult {
    let t = &input.traffic;
    let mut status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_method: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut latencies = Vec::new();
    for r in &t.records {
        let key = status_key(r.status);
        *status.entry(key.clone()).or_default() += 1;
        *by_method
            .entry(r.method.as_str().to_string())
            .or_default()
            .entry(key)
            .or_default() += 1;
        if r.status.is_some() {
            latencies.push(r.latency);
        }
    }
    let requests = t.records.len() as u64;
    let opened = input.accept_times.len() as u64;
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
    let latency = Latency {
        p50: ms(nearest_rank(&mut latencies, 50.0)),
        p99: ms(nearest_rank(&mut latencies, 99.0)),
    };
    let timeline = timeline(&input);
    PhaseResult {
        phase: input.phase,
        requests,
        status,
        status_by_method: by_method,
        upstream_connections_opened: opened,
        upstream_connections_per_request: (requests > 0).then(|| opened as f64 / requests as f64),
        time_wait_peak: input.time_wait.iter().map(|(_, n)| *n).max().unwrap_or(0),
        latency_ms: latency,
        error_signatures: input.signatures.counts.clone(),
        error_samples: input.signatures.samples.clone(),
        nginx_retried: input.nginx_retried,
        client_connections_opened: t.connections_opened,
        client_retries: t.client_retries,
        client_errors: t.errors.clone(),
        stub_status: input.stub,
        duration_ms: input.elapsed.as_millis() as u64,
        timeline,
        config: input.config,
        nginx_pid: input.nginx_pid,
        namespace: input.namespace,
        warnings: input.warnings,
    }
}

/// Buckets of about a fortieth of the planned duration (at least 100 ms), so
/// both phases of a run share them.
fn timeline(input: &SummaryInput) -> Timeline {
    let planned_ms = input.planned.as_millis().max(1) as u64;
    let bucket_ms = (planned_ms / 40).div_ceil(100).max(1) * 100;
    let total_ms = (input.elapsed.as_millis() as u64).max(planned_ms);
    let n = total_ms.div_ceil(bucket_ms) as usize;
    let mut buckets: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            t_ms: i as u64 * bucket_ms,
            ..Bucket::default()
        })
        .collect();
    let index =
        |offset: Duration| ((offset.as_millis() as u64) / bucket_ms).min(n as u64 - 1) as usize;
    for r in &input.traffic.records {
        let b = &mut buckets[index(r.at)];
        b.requests += 1;
        match r.status {
            Some(502) => b.status_502 += 1,
            None => b.client_errors += 1,
            _ => {}
        }
    }
    for at in &input.traffic.connection_times {
        buckets[index(*at)].new_client_connections += 1;
    }
    for at in &input.accept_times {
        let offset = at.saturating_duration_since(input.epoch);
        buckets[index(offset)].new_upstream_connections += 1;
    }
    // TIME_WAIT is a level, not an event count: a bucket without a sample of
    // its own keeps the last level seen.
    let mut sampled = vec![false; n];
    for (at, count) in &input.time_wait {
        let i = index(at.saturating_duration_since(input.epoch));
        buckets[i].time_wait = buckets[i].time_wait.max(*count);
        sampled[i] = true;
    }
    for i in 1..n {
        if !sampled[i] {
            buckets[i].time_wait = buckets[i - 1].time_wait;
        }
    }
    Timeline { bucket_ms, buckets }
}
