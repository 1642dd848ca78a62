//! Splitting `nginx -T` output back into files.
//!
//! nginx writes, for each file it read (each once, in the order it read
//! them): `# configuration file PATH:` and a line feed, the file's bytes,
//! and one more line feed (`nginx.c`, the `ngx_dump_config` branch).
//! Anything before the first marker (the "syntax is ok" lines, when stderr
//! was captured too) is ignored.

const MARKER: &[u8] = b"# configuration file ";

/// `(path, bytes)` for each dumped file.
pub(crate) fn split_dump(dump: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut markers = Vec::new(); // (marker line start, content start, path)
    let mut line_start = 0usize;
    while line_start < dump.len() {
        let line_end = dump[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(dump.len(), |n| line_start + n);
        let line = &dump[line_start..line_end];
        if let Some(rest) = line.strip_prefix(MARKER) {
            if let Some(path) = rest.strip_suffix(b":") {
                markers.push((
                    line_start,
                    (line_end + 1).min(dump.len()),
                    String::from_utf8_lossy(path).into_owned(),
                ));
            }
        }
        line_start = line_end + 1;
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(markers.len());
    for (i, (_, content_start, path)) in markers.iter().enumerate() {
        let end = markers.get(i + 1).map_or(dump.len(), |m| m.0);
        let mut content = &dump[*content_start..end.max(*content_start)];
        // The line feed nginx adds after each file.
        if let Some(c) = content.strip_suffix(b"\n") {
            content = c;
        }
        if !files.iter().any(|(p, _)| p == path) {
            files.push((path.clone(), content.to_vec()));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_markers_and_drops_the_added_line_feed() {
        let dump = b"nginx: the configuration file /e/n.conf syntax is ok\n\
# configuration file /e/n.conf:\nevents {}\ninclude /e/a.conf;\n\n\
# configuration file /e/a.conf:\nx;\n";
        let files = split_dump(dump);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].0, "/e/n.conf");
        assert_eq!(files[0].1, b"events {}\ninclude /e/a.conf;\n");
        assert_eq!(files[1].0, "/e/a.conf");
        assert_eq!(files[1].1, b"x;");
    }
}
