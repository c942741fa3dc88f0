//! What the audit's end-to-end tests share: the binary, a temporary home, the simulator as a
//! child process, and `vault add` with a credential on stdin. The temp dir guard is used by
//! every test binary of this crate.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its own part

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub const PASS: &str = "audit-test-passphrase";

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keyfence"))
}

#[path = "../../../../tests/support/tempdir.rs"]
mod support;
#[allow(unused_imports)] // each test binary uses its own part
pub use support::{TempDir, unique_path};

pub fn tempdir(name: &str) -> TempDir {
    TempDir::at(std::env::temp_dir().join(format!("keyfence-audit-{name}-{}", std::process::id())))
}

/// A running `keyfence sim`, killed when dropped.
pub struct Sim {
    child: Child,
    pub urls: Value,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    pub fn url(&self, venue: &str) -> String {
        self.urls[venue]["base_url"].as_str().unwrap().to_owned()
    }
}

/// Start `keyfence sim` with this configuration (written to `dir/sim.toml`).
pub fn start_sim(dir: &Path, config: &str) -> Sim {
    let cfg = dir.join("sim.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = bin()
        .args(["sim", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut admin = String::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("admin") {
            admin = rest.trim().to_owned();
            break;
        }
    }
    assert!(admin.starts_with("http://"), "simulator did not start");
    let urls = get_json(&format!("{admin}/admin/venues"));
    Sim { child, urls }
}

/// A tiny HTTP GET over loopback (the test needs no HTTP client crate).
pub fn get_json(url: &str) -> Value {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut s, &mut buf).unwrap();
    let body = buf.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

pub fn kf(home: &Path) -> Command {
    let mut c = bin();
    c.arg("--home")
        .arg(home)
        .env("KEYFENCE_PASSPHRASE", PASS)
        .env("KEYFENCE_SCRYPT_LOG_N", "10")
        .env_remove("KEYFENCE_HOME");
    c
}

pub fn run(c: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// `vault add LABEL --exchange VENUE --service SERVICE --endpoint URL [extra...]`, the
/// credential JSON on stdin.
pub fn add(
    home: &Path,
    label: &str,
    venue: &str,
    service: &str,
    endpoint: &str,
    cred: &str,
    extra: &[&str],
) {
    let o = run(
        kf(home)
            .args([
                "vault",
                "add",
                label,
                "--exchange",
                venue,
                "--service",
                service,
                "--endpoint",
                endpoint,
            ])
            .args(extra),
        Some(cred),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
