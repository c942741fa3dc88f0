//! The README's vault and audit quick starts, run by `sh` as a new user would run them: one
//! shell, the vault block then the audit block, from a copy of the repository's `examples/`,
//! with the built `keyfence` first on PATH. The audit output must show every line the README
//! shows (in order; `...` stands for lines left out). A README edit that breaks a command, or
//! an output change the README does not follow, fails here.
//!
//! One change is made to what the README says: the simulator's fixed ports (9100-9105 in
//! `examples/sim.toml` and in the blocks) become free ones, so the test can run beside another
//! simulator.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed set-up fails loudly

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first ```` ```sh ```` block after `marker`, and the plain ```` ``` ```` block right
/// after it (its output), if there is one.
fn blocks<'a>(readme: &'a str, marker: &str) -> (&'a str, Option<&'a str>) {
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md lost its `{marker}` marker"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").unwrap() + "```sh\n".len();
    let len = rest[start..].find("```").unwrap();
    let script = &rest[start..start + len];
    let after = rest[start + len + 3..].trim_start();
    let output = after
        .strip_prefix("```\n")
        .map(|o| &o[..o.find("```").unwrap()]);
    (script, output)
}

/// Six ports nothing listens on right now.
fn free_ports() -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..6)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn repoint(text: &str, ports: &[u16]) -> String {
    let mut out = text.to_owned();
    for (i, port) in ports.iter().enumerate() {
        out = out.replace(
            &format!("127.0.0.1:{}", 9100 + i),
            &format!("127.0.0.1:{port}"),
        );
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// `want`'s lines appear in `got` in order, each as a whole line (trailing spaces aside);
/// a `...` line in `want` skips any number of lines.
fn shows_in_order(got: &str, want: &str) -> Result<(), String> {
    let mut lines = got.lines().map(str::trim_end);
    for w in want.lines().map(str::trim_end) {
        if w.trim() == "..." {
            continue;
        }
        if w.is_empty() {
            continue;
        }
        if !lines.any(|g| g == w) {
            return Err(format!(
                "the README shows\n  {w}\nbut the output has no such line (after the ones before it)"
            ));
        }
    }
    Ok(())
}

#[test]
fn readme_vault_and_audit_quick_starts_run_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (vault, _) = blocks(&readme, "<!-- vault-quickstart -->");
    let (audit, shown) = blocks(&readme, "<!-- audit-quickstart -->");
    let shown = shown.expect("the audit quick start shows its output");
    assert!(audit.contains("keyfence audit"), "{audit}");

    let dir = std::env::temp_dir().join(format!("keyfence-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ports = free_ports();
    copy_dir(&repo().join("examples"), &dir.join("examples"));
    let sim_toml = dir.join("examples/sim.toml");
    let cfg = std::fs::read_to_string(&sim_toml).unwrap();
    std::fs::write(&sim_toml, repoint(&cfg, &ports)).unwrap();
    let script = repoint(&format!("{vault}\n{audit}"), &ports);

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyfence")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Its own process group, so that whatever the script leaves running can be stopped.
    let child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env("PATH", path)
        .env("KEYFENCE_HOME", dir.join("home"))
        .env("KEYFENCE_SCRYPT_LOG_N", "10")
        .env_remove("KEYFENCE_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut child = child;
    let group = format!("-{}", child.id());
    // Read the pipes aside: a process the script leaves running would hold them open.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_reader = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err_reader = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let status = child.wait().unwrap();
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A process told to stop takes a moment to go: wait for it, a while.
    let mut left_running = signal("-0");
    for _ in 0..100 {
        if !left_running {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left_running = signal("-0");
    }
    if left_running {
        signal("-TERM");
    }
    let stdout = out_reader.join().unwrap();
    let all = format!("{stdout}\n{}", err_reader.join().unwrap());

    assert!(
        !left_running,
        "the quick start leaves a process (the simulator) running\n{all}"
    );
    // The script's last command stops the simulator: it succeeds only if the simulator was
    // still running then.
    assert!(status.success(), "{script}\n---\n{all}");
    // The vault block's key and the audit block's key are both in the vault.
    assert!(all.contains("added `binance-bot`"), "{all}");
    assert!(all.contains("added `binance-main`"), "{all}");
    // Every line the README shows, in order.
    if let Err(e) = shows_in_order(&stdout, shown) {
        panic!("{e}\n--- output:\n{stdout}");
    }
    // And the secrets stay out of the output.
    for secret in [
        "binance-risky-secret-0123456789",
        "a long passphrase only you know",
    ] {
        assert!(!all.contains(secret), "a secret reached the output");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_output_check_reads_ellipses_and_order() {
    let got = "a\nb  \nc\nd\n";
    assert!(shows_in_order(got, "a\n...\nd\n").is_ok());
    assert!(shows_in_order(got, "b\nc\n").is_ok());
    assert!(shows_in_order(got, "c\nb\n").is_err(), "order matters");
    assert!(shows_in_order(got, "a\nx\n").is_err());
    assert!(shows_in_order(got, "b  c\n").is_err(), "whole lines only");
}
