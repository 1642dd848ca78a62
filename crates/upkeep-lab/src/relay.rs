//! A TCP relay between nginx and one emulated backend that delays everything
//! crossing it: bytes, FIN and RST, in both directions, by a fixed one-way
//! latency.
//!
//! Why it exists: the stale keep-alive failure needs the backend's close to
//! cross nginx's next request on the wire. On loopback the two meet only if
//! they happen within microseconds; with a one-way delay `d` any request nginx
//! sends during the `2d` before the backend's FIN reaches it meets a closed
//! socket, as it does between real hosts.
//!
//! A new connection also costs a round trip before its first byte is passed on
//! (the relay connects to the backend `d` after accepting and starts relaying
//! `d` after that), so the latency saved by reusing connections shows in the
//! measurements.

use crate::cancel::Cancel;
use socket2::SockRef;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

/// How long the relay waits for the backend to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running relay: nginx connects to `addr`, the relay connects to `target`.
pub struct Relay {
    pub addr: SocketAddr,
    pub target: SocketAddr,
    pub delay: Duration,
    pub accepted: Arc<AtomicU64>,
}

impl Relay {
    pub async fn start(
        bind: SocketAddr,
        target: SocketAddr,
        delay: Duration,
        stop: Cancel,
        tasks: &mut JoinSet<()>,
    ) -> io::Result<Relay> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        tasks.spawn(async move { accept_loop(listener, target, delay, counter, stop).await });
        Ok(Relay {
            addr,
            target,
            delay,
            accepted,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    delay: Duration,
    accepted: Arc<AtomicU64>,
    stop: Cancel,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            incoming = listener.accept() => {
                let Ok((client, _)) = incoming else {
                    // Out of descriptors or similar: do not spin on it.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                conns.spawn(relay_connection(client, target, delay, stop.child()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn relay_connection(client: TcpStream, target: SocketAddr, delay: Duration, abort: Cancel) {
    // The handshake with the backend takes a round trip, as it would across a
    // network: the SYN travels `delay` before the connect, the answer
    // (SYN-ACK, or the refusal's RST) `delay` after it. The client's first
    // bytes wait in its socket meanwhile.
    let wait = |d: Duration| {
        let abort = abort.clone();
        async move {
            tokio::select! {
                _ = abort.cancelled() => false,
                _ = tokio::time::sleep(d) => true,
            }
        }
    };
    if !wait(delay).await {
        return;
    }
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
    if !wait(delay).await {
        return;
    }
    let server = match connected {
        Ok(Ok(s)) => s,
        _ => {
            // Refused, reset or unreachable: the client sees a reset.
            reset(&client);
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let client = Arc::new(client);
    let server = Arc::new(server);
    tokio::join!(
        pump(client.clone(), server.clone(), delay, abort.clone()),
        pump(server.clone(), client.clone(), delay, abort.clone()),
    );
    // Dropping the last references closes both sockets; one marked by
    // `reset` goes out as an RST.
}

/// What crosses the relay in one direction.
enum Event {
    Data(Vec<u8>),
    Fin,
    Rst,
}

/// Moves `src`'s bytes to `dst`, each event delivered `delay` after it was read.
async fn pump(src: Arc<TcpStream>, dst: Arc<TcpStream>, delay: Duration, abort: Cancel) {
    let (tx, rx) = mpsc::unbounded_channel::<(Instant, Event)>();
    tokio::join!(
        read_side(&src, tx, delay, &abort),
        write_side(&src, &dst, rx, delay, &abort),
    );
}

async fn read_side(
    src: &TcpStream,
    tx: mpsc::UnboundedSender<(Instant, Event)>,
    delay: Duration,
    abort: &Cancel,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            _ = abort.cancelled() => return,
            ready = src.readable() => {
                if ready.is_err() {
                    let _ = tx.send((Instant::now() + delay, Event::Rst));
                    return;
                }
            }
        }
        let event = match src.try_read(&mut buf) {
            Ok(0) => Event::Fin,
            Ok(n) => Event::Data(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => Event::Rst,
        };
        let last = !matches!(event, Event::Data(_));
        if tx.send((Instant::now() + delay, event)).is_err() || last {
            return;
        }
    }
}

async fn write_side(
    src: &TcpStream,
    dst: &TcpStream,
    mut rx: mpsc::UnboundedReceiver<(Instant, Event)>,
    delay: Duration,
    abort: &Cancel,
) {
    loop {
        let next = tokio::select! {
            _ = abort.cancelled() => return,
            next = rx.recv() => next,
        };
        let Some((due, event)) = next else { return };
        tokio::select! {
            _ = abort.cancelled() => return,
            _ = sleep_until(due) => {}
        }
        match event {
            Event::Data(bytes) => {
                if write_all(dst, &bytes).await.is_err() {
                    // dst is gone (it reset, or closed and answered our bytes
                    // with an RST): that reset travels back to src.
                    tokio::select! {
                        _ = abort.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    reset(src);
                    abort.cancel();
                    return;
                }
            }
            Event::Fin => {
                let _ = SockRef::from(dst).shutdown(Shutdown::Write);
                return;
            }
            Event::Rst => {
                reset(dst);
                abort.cancel();
                return;
            }
        }
    }
}

async fn write_all(dst: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        dst.writable().await?;
        match dst.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Arranges for the socket's close to send an RST instead of a FIN.
fn reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::rt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend listener, a relay in front of it with `delay`, one client
    /// connected through the relay, and the backend's end of that connection.
    struct Rig {
        stop: Cancel,
        tasks: JoinSet<()>,
        relay: Relay,
        client: TcpStream,
        backend: TcpStream,
    }

    async fn rig(delay: Duration) -> Rig {
        let stop = Cancel::new();
        let mut tasks = JoinSet::new();
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = server.local_addr().unwrap();
        let relay = Relay::start(
            "127.0.0.1:0".parse().unwrap(),
            target,
            delay,
            stop.clone(),
            &mut tasks,
        )
        .await
        .unwrap();
        let client = TcpStream::connect(relay.addr).await.unwrap();
        let (backend, _) = server.accept().await.unwrap();
        Rig {
            stop,
            tasks,
            relay,
            client,
            backend,
        }
    }

    #[test]
    fn delays_bytes_and_fin_in_both_directions() {
        rt().block_on(async {
            let delay = Duration::from_millis(40);
            let Rig {
                stop,
                mut tasks,
                relay,
                mut client,
                mut backend,
            } = rig(delay).await;

            let sent = Instant::now();
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            backend.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            assert!(
                sent.elapsed() >= delay,
                "bytes crossed in {:?}",
                sent.elapsed()
            );

            // The backend's FIN reaches the client no sooner than `delay` later.
            let closed = Instant::now();
            drop(backend);
            let n = client.read(&mut buf).await.unwrap();
            assert_eq!(n, 0);
            assert!(
                closed.elapsed() >= delay,
                "FIN crossed in {:?}",
                closed.elapsed()
            );
            assert_eq!(relay.accepted.load(Ordering::Relaxed), 1);
            stop.cancel();
            while tasks.join_next().await.is_some() {}
        });
    }

    #[test]
    fn a_request_sent_after_the_backend_closed_is_answered_by_a_reset() {
        rt().block_on(async {
            let delay = Duration::from_millis(30);
            let Rig {
                stop,
                mut tasks,
                relay: _,
                mut client,
                backend,
            } = rig(delay).await;
            // The backend closes; within the delay the client still sees an
            // open connection and writes, like nginx reusing a pooled one.
            drop(backend);
            client.write_all(b"POST").await.unwrap();
            let mut buf = [0u8; 16];
            // First the delayed FIN (EOF), or directly the reset.
            let first = client.read(&mut buf).await;
            assert!(matches!(first, Ok(0)) || first.is_err());
            stop.cancel();
            while tasks.join_next().await.is_some() {}
        });
    }

    #[test]
    fn a_reset_crosses_late_too() {
        rt().block_on(async {
            let delay = Duration::from_millis(40);
            let Rig {
                stop,
                mut tasks,
                relay: _,
                mut client,
                mut backend,
            } = rig(delay).await;
            // Once a byte has crossed, the relay holds both connections.
            client.write_all(b"x").await.unwrap();
            backend.read_exact(&mut [0u8; 1]).await.unwrap();
            let reset_at = Instant::now();
            reset(&backend);
            drop(backend);
            let mut buf = [0u8; 8];
            let got = client.read(&mut buf).await;
            assert!(got.is_err(), "expected a reset, got {got:?}");
            assert!(
                reset_at.elapsed() >= delay,
                "RST crossed in {:?}",
                reset_at.elapsed()
            );
            stop.cancel();
            while tasks.join_next().await.is_some() {}
        });
    }
}
