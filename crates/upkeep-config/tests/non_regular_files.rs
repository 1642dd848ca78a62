//! Included files that are not ordinary text files: devices, FIFOs,
//! directories, unreadable files, a UTF-8 byte order mark. Each case is
//! first put to a real nginx (Debian's 1.22, `nginx -t` in a private
//! prefix), then upkeep must load it the same way: read what nginx reads,
//! fail where nginx fails, and never hang or read without bound.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use upkeep_config::{ConfigSet, FsLoader, LoadError, LoadErrorKind, LoadOptions, Loader};
use upkeep_nginx::{NginxBinary, Prefix};

fn nginx() -> NginxBinary {
    NginxBinary::find(None).expect("nginx is not installed (apt-get install nginx)")
}

/// A main config in a fresh prefix whose `http` block holds `http_body`.
fn config(prefix: &Prefix, http_body: &str) -> std::path::PathBuf {
    let pid = prefix.pid_file();
    prefix
        .write(
            "nginx.conf",
            &format!(
                "pid {};\nevents {{}}\nhttp {{\n    {http_body}\n}}\n",
                pid.display()
            ),
        )
        .unwrap()
}

fn nginx_t(prefix: &Prefix, conf: &Path) -> (bool, String) {
    let scratch = tempfile::tempdir().unwrap();
    let out = nginx()
        .test_config(conf, prefix.path(), scratch.path())
        .expect("run nginx -t");
    (out.ok, out.output)
}

/// Loads on another thread so that a hang fails the test instead of
/// blocking it forever.
fn load_within_time_limit(conf: &Path) -> Result<ConfigSet, LoadError> {
    let (tx, rx) = mpsc::channel();
    let path = conf.to_str().unwrap().to_string();
    std::thread::spawn(move || {
        let _ = tx.send(ConfigSet::load(&path, &FsLoader, &LoadOptions::default()));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("loading the configuration hung")
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn character_devices_are_read_as_empty_files_as_nginx_reads_them() {
    let prefix = Prefix::new().unwrap();
    let conf = config(&prefix, "include /dev/zero;\n    include /dev/urandom;");
    let (ok, output) = nginx_t(&prefix, &conf);
    assert!(ok, "nginx -t refused the devices: {output}");
    let set = load_within_time_limit(&conf).expect("upkeep refused what nginx accepts");
    let paths: Vec<&str> = set.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths[1..], ["/dev/zero", "/dev/urandom"]);
    assert!(set.files[1..].iter().all(|f| f.text.is_empty()));
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn an_included_fifo_is_an_error_at_the_include_while_nginx_blocks_on_it() {
    let prefix = Prefix::new().unwrap();
    let fifo = prefix.path().join("pipe.conf");
    mkfifo(&fifo);
    let conf = config(&prefix, &format!("include {};", fifo.display()));

    // nginx waits in open() for a writer...
    let scratch = tempfile::tempdir().unwrap();
    let mut child = Command::new(&nginx().path)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(format!("{}/", prefix.path().display()))
        .arg("-e")
        .arg(scratch.path().join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let still_waiting = child.try_wait().unwrap().is_none();
    // ...and finishes once one opens the FIFO (and closes it: an empty file).
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo);
    drop(writer);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nginx -t did not finish after the FIFO was opened for writing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        still_waiting,
        "nginx -t finished without a writer on the FIFO"
    );
    assert!(status.success());

    let err = load_within_time_limit(&conf).expect_err("a FIFO include must be refused");
    assert_eq!(err.kind, LoadErrorKind::IncludeUnreadable);
    assert_eq!(err.path, conf.to_str().unwrap());
    assert_eq!(err.pos.map(|p| p.line), Some(4));
    assert!(err.message.contains("FIFO"), "{}", err.message);
}

#[test]
fn a_directory_include_is_an_error_as_in_nginx() {
    let prefix = Prefix::new().unwrap();
    std::fs::create_dir_all(prefix.path().join("conf.d/sub.conf")).unwrap();
    prefix
        .write("conf.d/a.conf", "keepalive_timeout 5s;\n")
        .unwrap();
    for include in ["conf.d/sub.conf", "conf.d/*.conf"] {
        let conf = config(&prefix, &format!("include {include};"));
        let (ok, output) = nginx_t(&prefix, &conf);
        assert!(!ok, "nginx -t accepted `include {include}`");
        assert!(output.contains("(21: Is a directory)"), "{output}");

        let err = load_within_time_limit(&conf).expect_err("a directory include must fail");
        assert_eq!(err.kind, LoadErrorKind::IncludeUnreadable, "{include}");
        assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((4, 5)));
        assert!(err.message.contains("Is a directory"), "{}", err.message);
        assert!(
            err.to_string()
                .starts_with(&format!("{}:4:5: ", conf.display())),
            "{err}"
        );
    }
}

/// A loader whose files all exist but cannot be opened, as for a user
/// without read permission (the CLI test runs the real case as `nobody`).
struct PermissionDenied(upkeep_config::MemoryLoader);

impl Loader for PermissionDenied {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        if path.ends_with("secret.conf") {
            return Err(std::io::Error::from_raw_os_error(13));
        }
        self.0.read(path)
    }

    fn glob(&self, pattern: &str) -> std::io::Result<Vec<String>> {
        self.0.glob(pattern)
    }
}

#[test]
fn an_unreadable_include_is_an_error_but_a_missing_one_stays_a_warning() {
    let mut memory = upkeep_config::MemoryLoader::new();
    memory.insert(
        "/etc/nginx/nginx.conf",
        "http {\n    include mime.types;\n    include secret.conf;\n}\n",
    );
    let loader = PermissionDenied(memory);
    let err = ConfigSet::load("/etc/nginx/nginx.conf", &loader, &LoadOptions::default())
        .expect_err("permission denied must fail the load");
    assert_eq!(err.kind, LoadErrorKind::IncludeUnreadable);
    assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((3, 5)));
    assert!(err.message.contains("Permission denied"), "{}", err.message);

    let mut memory = upkeep_config::MemoryLoader::new();
    memory.insert(
        "/etc/nginx/nginx.conf",
        "http {\n    include mime.types;\n}\n",
    );
    let set = ConfigSet::load("/etc/nginx/nginx.conf", &memory, &LoadOptions::default()).unwrap();
    assert_eq!(set.warnings.len(), 1);
}

#[test]
fn a_byte_order_mark_is_an_error_at_1_1_as_nginx_refuses_it() {
    let prefix = Prefix::new().unwrap();
    let bom = "\u{feff}";
    // As the main file.
    let main = prefix
        .write(
            "bom.conf",
            &format!("{bom}pid {};\nevents {{}}\n", prefix.pid_file().display()),
        )
        .unwrap();
    let (ok, output) = nginx_t(&prefix, &main);
    assert!(!ok);
    assert!(
        output.contains(&format!(
            "unknown directive \"{bom}pid\" in {}:1",
            main.display()
        )),
        "{output}"
    );
    let err = load_within_time_limit(&main).expect_err("a BOM must be refused");
    assert_eq!(err.kind, LoadErrorKind::ByteOrderMark);
    assert_eq!(err.path, main.to_str().unwrap());
    assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((1, 1)));
    assert!(
        err.message
            .contains(r#"unknown directive "\xEF\xBB\xBFpid""#),
        "{}",
        err.message
    );

    // As an included file.
    let inc = prefix
        .write("inc.conf", &format!("{bom}keepalive_timeout 5s;\n"))
        .unwrap();
    let conf = config(&prefix, &format!("include {};", inc.display()));
    let (ok, output) = nginx_t(&prefix, &conf);
    assert!(!ok);
    assert!(
        output.contains(&format!("in {}:1", inc.display())),
        "{output}"
    );
    let err = load_within_time_limit(&conf).expect_err("a BOM must be refused");
    assert_eq!(err.kind, LoadErrorKind::ByteOrderMark);
    assert_eq!(err.path, inc.to_str().unwrap());
    assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((1, 1)));
}

#[test]
fn a_byte_order_mark_in_a_types_or_map_include_is_accepted_as_nginx_accepts_it() {
    let prefix = Prefix::new().unwrap();
    let types = prefix
        .write("bom.types", "\u{feff}text/html html;\n")
        .unwrap();
    let map = prefix.write("bom.map", "\u{feff}\"/a\" 1;\n").unwrap();
    let conf = config(
        &prefix,
        &format!(
            "types {{ include {}; }}\n    map $uri $x {{ include {}; }}",
            types.display(),
            map.display()
        ),
    );
    let (ok, output) = nginx_t(&prefix, &conf);
    assert!(ok, "{output}");
    let set = load_within_time_limit(&conf).expect("upkeep refused what nginx accepts");
    assert_eq!(set.files.len(), 3);
}
