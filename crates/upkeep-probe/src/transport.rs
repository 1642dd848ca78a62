//! A byte stream to one backend (TCP, UNIX socket, optionally TLS) whose
//! reads wait until a deadline and tell *how* the peer closed.
//!
//! Reads block with a short socket timeout in a loop rather than in one long
//! call: the kernel wakes a blocked `read` the moment a FIN or RST arrives,
//! so the time of the close is measured to the scheduler's precision, while
//! the short slices let Ctrl-C and the deadline interrupt the wait.

use crate::target::ConnectAddr;
use crate::Cancel;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a blocked read looks at the deadline and the cancel flag.
const SLICE: Duration = Duration::from_millis(100);

/// How the backend ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseKind {
    /// An orderly close: `read` returned 0 (TCP FIN; for TLS also a
    /// `close_notify` alert).
    Fin,
    /// A reset: `read` failed with ECONNRESET. The backend closed with unread
    /// data or with `SO_LINGER` 0; a request in flight on such a connection is
    /// lost without a response.
    Rst,
}

/// What one attempt to read more bytes ended with.
#[derive(Debug)]
pub enum Fill {
    /// This many new bytes are in the buffer.
    Data(usize),
    /// The peer closed; `at` is when the read returned.
    Closed {
        kind: CloseKind,
        at: Instant,
    },
    /// The deadline passed without news.
    Deadline,
    Cancelled,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(Some(t)),
            Socket::Unix(s) => s.set_read_timeout(Some(t)),
        }
    }

    fn set_write_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(Some(t)),
            Socket::Unix(s) => s.set_write_timeout(Some(t)),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // An explicit shutdown makes our side's close a plain FIN even if the
        // backend sent bytes we did not read.
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// An open connection with a buffer of received, not yet consumed bytes.
pub struct Connection {
    socket: Socket,
    tls: Option<Box<rustls::ClientConnection>>,
    /// Plaintext received and not yet consumed by the HTTP parser.
    pub buf: Vec<u8>,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// A connect error; running out of file descriptors is this process's
/// problem, not the backend's, and says so.
fn explain(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => format!(
            "{e}: this probe ran out of file descriptors, not the backend (lower --parallel or raise `ulimit -n`)"
        ),
        _ => e.to_string(),
    }
}

/// Whether a write failed because the backend had already closed.
pub fn is_closed_error(e: &io::Error) -> bool {
    is_reset(e) || e.kind() == io::ErrorKind::BrokenPipe
}

impl Connection {
    /// Connects (and completes the TLS handshake when `tls` is given) within
    /// `timeout`.
    pub fn open(
        addr: &ConnectAddr,
        tls: Option<(&Arc<rustls::ClientConfig>, &str)>,
        timeout: Duration,
    ) -> Result<Connection, String> {
        let socket = match addr {
            ConnectAddr::Inet(a) => {
                let s = TcpStream::connect_timeout(a, timeout)
                    .map_err(|e| format!("connect to {a}: {}", explain(&e)))?;
                // Requests are small and sent whole; don't let Nagle delay
                // the next one behind an unacknowledged segment.
                let _ = s.set_nodelay(true);
                Socket::Tcp(s)
            }
            ConnectAddr::Unix(p) => Socket::Unix(
                UnixStream::connect(p)
                    .map_err(|e| format!("connect to unix:{}: {}", p.display(), explain(&e)))?,
            ),
        };
        socket
            .set_write_timeout(timeout)
            .map_err(|e| e.to_string())?;
        let mut conn = Connection {
            socket,
            tls: None,
            buf: Vec::with_capacity(16 * 1024),
        };
        if let Some((config, name)) = tls {
            conn.handshake(config, name, timeout)?;
        }
        Ok(conn)
    }

    /// A plain connection over an already connected UNIX socket (tests feed
    /// the HTTP reader through a socket pair).
    #[cfg(test)]
    pub(crate) fn from_unix_stream(s: UnixStream) -> Connection {
        Connection {
            socket: Socket::Unix(s),
            tls: None,
            buf: Vec::new(),
        }
    }

    fn handshake(
        &mut self,
        config: &Arc<rustls::ClientConfig>,
        name: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let server_name = rustls::pki_types::ServerName::try_from(name.to_string())
            .map_err(|_| format!("`{name}` is not a valid TLS server name"))?;
        let mut tls = rustls::ClientConnection::new(config.clone(), server_name)
            .map_err(|e| format!("TLS setup: {e}"))?;
        let deadline = Instant::now() + timeout;
        self.socket
            .set_read_timeout(SLICE)
            .map_err(|e| e.to_string())?;
        while tls.is_handshaking() {
            match tls.complete_io(&mut self.socket) {
                Ok(_) => {}
                Err(e) if timed_out(&e) => {
                    if Instant::now() >= deadline {
                        return Err(format!("TLS handshake timed out after {timeout:?}"));
                    }
                }
                Err(e) => return Err(format!("TLS handshake: {e}")),
            }
        }
        self.tls = Some(Box::new(tls));
        Ok(())
    }

    /// Sends all of `data`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            None => self.socket.write_all(data),
            Some(tls) => {
                tls.writer().write_all(data)?;
                while tls.wants_write() {
                    tls.write_tls(&mut self.socket)?;
                }
                Ok(())
            }
        }
    }

    /// Waits until more bytes arrive, the peer closes, `deadline` passes or
    /// `cancel` is set. New bytes are appended to [`Connection::buf`].
    pub fn fill(&mut self, deadline: Instant, cancel: &Cancel) -> io::Result<Fill> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(tls) = &mut self.tls {
                // Plaintext already decrypted comes first.
                match tls.reader().read(&mut chunk) {
                    Ok(0) => {
                        return Ok(Fill::Closed {
                            kind: CloseKind::Fin,
                            at: Instant::now(),
                        })
                    }
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        return Ok(Fill::Data(n));
                    }
                    // TCP FIN without close_notify: still an orderly close
                    // as far as connection reuse is concerned.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Ok(Fill::Closed {
                            kind: CloseKind::Fin,
                            at: Instant::now(),
                        })
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if cancel.is_cancelled() {
                return Ok(Fill::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Fill::Deadline);
            }
            let slice = (deadline - now).min(SLICE).max(Duration::from_millis(1));
            self.socket.set_read_timeout(slice)?;
            match &mut self.tls {
                None => match self.socket.read(&mut chunk) {
                    Ok(0) => {
                        return Ok(Fill::Closed {
                            kind: CloseKind::Fin,
                            at: Instant::now(),
                        })
                    }
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        return Ok(Fill::Data(n));
                    }
                    Err(e) if is_reset(&e) => {
                        return Ok(Fill::Closed {
                            kind: CloseKind::Rst,
                            at: Instant::now(),
                        })
                    }
                    Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                },
                Some(tls) => match tls.read_tls(&mut self.socket) {
                    // On EOF (0) rustls records it; the plaintext reader at
                    // the top of the loop then reports the close.
                    Ok(_) => {
                        if let Err(e) = tls.process_new_packets() {
                            // Tell the backend why, as a well-behaved client would.
                            let _ = tls.write_tls(&mut self.socket);
                            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                        }
                        while tls.wants_write() {
                            if tls.write_tls(&mut self.socket).is_err() {
                                break;
                            }
                        }
                    }
                    Err(e) if is_reset(&e) => {
                        return Ok(Fill::Closed {
                            kind: CloseKind::Rst,
                            at: Instant::now(),
                        })
                    }
                    Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                },
            }
        }
    }
}
