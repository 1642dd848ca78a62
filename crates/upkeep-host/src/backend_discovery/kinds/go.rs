//! Go programs carry their build information in an ELF section of its own,
//! `.go.buildinfo`. net/http's idle timeout is a field the program sets in code
//! (default: none), so a Go program is recognized but its number is not
//! fed to the rules: the default would hide a shorter timeout the program
//! set. `doctor --probe` measures it.

use super::{Recognition, Sourced};
use crate::backend_discovery::proc_info::ProcessInfo;
use std::io::{Read, Seek, SeekFrom};

pub fn recognize(p: &ProcessInfo) -> Option<Recognition> {
    if !is_go_binary(p.pid) {
        return None;
    }
    let mut r = Recognition::new("Go program", Some("go"));
    r.feeds_rules = false;
    r.idle_timeout_ms = Some(Sourced::new(
        None,
        "Go net/http: IdleTimeout is set in the program's code (default none) and cannot be read from outside; probe it",
    ));
    r.notes.push(format!(
        "binary {}",
        p.exe
            .as_ref()
            .map(|e| e.display().to_string())
            .unwrap_or_default()
    ));
    Some(r)
}

fn is_go_binary(pid: i32) -> bool {
    std::fs::File::open(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|mut f| elf_has_section(&mut f, b".go.buildinfo"))
        .unwrap_or(false)
}

/// Whether a 64-bit little-endian ELF file has a section named `name`,
/// from its section headers and their string table (only those are read).
fn elf_has_section(f: &mut (impl Read + Seek), name: &[u8]) -> Option<bool> {
    let mut ehdr = [0u8; 64];
    f.read_exact(&mut ehdr).ok()?;
    // \x7fELF, ELFCLASS64, ELFDATA2LSB.
    if &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as u64;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let shoff = u64_at(&ehdr, 0x28);
    let shentsize = u16_at(&ehdr, 0x3a);
    let shnum = u16_at(&ehdr, 0x3c);
    let shstrndx = u16_at(&ehdr, 0x3e);
    if shentsize < 64 || shnum == 0 || shnum > 4096 || shstrndx >= shnum {
        return None;
    }
    let mut headers = vec![0u8; (shentsize * shnum) as usize];
    f.seek(SeekFrom::Start(shoff)).ok()?;
    f.read_exact(&mut headers).ok()?;
    let header = |i: u64| &headers[(i * shentsize) as usize..((i + 1) * shentsize) as usize];
    let strtab = header(shstrndx);
    let (str_off, str_size) = (u64_at(strtab, 0x18), u64_at(strtab, 0x20));
    if str_size > 1 << 20 {
        return None;
    }
    let mut names = vec![0u8; str_size as usize];
    f.seek(SeekFrom::Start(str_off)).ok()?;
    f.read_exact(&mut names).ok()?;
    Some((0..shnum).any(|i| {
        let at = u32::from_le_bytes(header(i)[..4].try_into().unwrap()) as usize;
        names
            .get(at..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .is_some_and(|n| n == name)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_section_names_of_elf_files() {
        // This test binary is ELF but not Go.
        let mut me = std::fs::File::open("/proc/self/exe").unwrap();
        assert_eq!(elf_has_section(&mut me, b".go.buildinfo"), Some(false));
        let mut me = std::fs::File::open("/proc/self/exe").unwrap();
        assert_eq!(elf_has_section(&mut me, b".text"), Some(true));
        let mut not_elf = std::io::Cursor::new(b"#!/bin/sh\n".to_vec());
        assert_eq!(elf_has_section(&mut not_elf, b".text"), None);
    }
}
