//! Counting TIME_WAIT sockets that belong to the lab.
//!
//! Read from `/proc/PID/net/tcp` and `tcp6`, where PID is a process in the
//! network namespace to look at (the nginx master), so the same code counts
//! on the host's loopback and inside the lab's own namespace. Only sockets
//! with a lab port on either end are counted: other software on the machine
//! does not pollute the figure.

use std::collections::HashSet;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

/// State code of TIME_WAIT in /proc/net/tcp (`TCP_TIME_WAIT` = 6).
const TIME_WAIT: &str = "06";

/// Where to read the socket tables of one network namespace.
#[derive(Clone, Debug)]
pub struct SocketTables {
    files: Vec<PathBuf>,
}

impl SocketTables {
    /// The tables of the namespace process `pid` lives in.
    pub fn of_process(pid: i32) -> SocketTables {
        SocketTables::in_dir(&PathBuf::from(format!("/proc/{pid}/net")))
    }

    pub fn in_dir(dir: &Path) -> SocketTables {
        SocketTables {
            files: vec![dir.join("tcp"), dir.join("tcp6")],
        }
    }

    /// TIME_WAIT sockets whose local or remote port is in `ports`.
    pub fn count_time_wait(&self, ports: &HashSet<u16>) -> io::Result<u64> {
        let mut total = 0;
        for file in &self.files {
            match std::fs::File::open(file) {
                Ok(f) => total += count_in(io::BufReader::new(f), ports)?,
                // No IPv6 in this kernel or namespace.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

fn count_in(reader: impl BufRead, ports: &HashSet<u16>) -> io::Result<u64> {
    let mut count = 0;
    for line in reader.lines().skip(1) {
        let line = line?;
        let mut fields = line.split_whitespace();
        let (Some(_sl), Some(local), Some(remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if state != TIME_WAIT {
            continue;
        }
        if [local, remote]
            .iter()
            .filter_map(|a| port_of(a))
            .any(|p| ports.contains(&p))
        {
            count += 1;
        }
    }
    Ok(count)
}

/// The port of an address field: `0100007F:1F90` (hex, port big-endian).
fn port_of(field: &str) -> Option<u16> {
    let (_, port) = field.rsplit_once(':')?;
    u16::from_str_radix(port, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 06 00000000:00000000 03:00001726 00000000     0        0 0 3 0000000000000000
   2: 0100007F:1F90 0100007F:C351 06 00000000:00000000 03:00001726 00000000     0        0 0 3 0000000000000000
   3: 0100007F:D000 0100007F:0050 06 00000000:00000000 03:00001726 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn counts_only_time_wait_on_lab_ports() {
        let ports: HashSet<u16> = [0x1F90].into_iter().collect();
        assert_eq!(count_in(SAMPLE.as_bytes(), &ports).unwrap(), 2);
        let none: HashSet<u16> = [1234].into_iter().collect();
        assert_eq!(count_in(SAMPLE.as_bytes(), &none).unwrap(), 0);
    }

    #[test]
    fn reads_this_process_tables() {
        // Whatever the machine has, reading our own tables must work.
        let tables = SocketTables::of_process(std::process::id() as i32);
        tables.count_time_wait(&HashSet::new()).unwrap();
    }
}
