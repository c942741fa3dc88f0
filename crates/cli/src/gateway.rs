//! `keyfence serve`, `config check`, `bot …`, `kill`, `resume` and `journal …`: the signing
//! gateway on the command line (docs/gateway.md).
//!
//! Exit codes: 0 ok; 1 the store or vault could not be read or written, or `journal verify`
//! found a bad entry; 2 usage or configuration error.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use keyfence_gateway::config::{GatewayConfig, valid_name};
use keyfence_gateway::issue::{Issued, issue};
use keyfence_store::Mode;
use keyfence_store::{BotCredential, BotRecord, Store, StoreOptions, SyncMode};

use crate::vault::{Failure, Format, Globals, home, usage};

type Result<T> = std::result::Result<T, Failure>;

fn failure(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Where the store is: `[gateway] database` of `--config`, else `<home>/keyfence.db`.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The gateway config (for its `[gateway] database`; default `<home>/keyfence.db`).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    fn load(&self) -> Result<Option<GatewayConfig>> {
        self.config
            .as_deref()
            .map(|p| GatewayConfig::load(p).map_err(|e| usage(e.to_string())))
            .transpose()
    }
}

fn db_path(g: &Globals, cfg: Option<&GatewayConfig>) -> Result<PathBuf> {
    let home = home(g)?;
    let rel = cfg.map_or_else(
        || PathBuf::from("keyfence.db"),
        |c| c.gateway.database.clone(),
    );
    Ok(home.dir().join(rel))
}

async fn open_store(g: &Globals, cfg: Option<&GatewayConfig>) -> Result<Store> {
    let path = db_path(g, cfg)?;
    let home = home(g)?;
    home.init().map_err(Failure::from)?;
    Store::open(&path, cli_store_options()).await.map_err(|e| {
        failure(
            1,
            format!("cannot open the store `{}`: {e}", path.display()),
        )
    })
}

fn cli_store_options() -> StoreOptions {
    // One-shot commands: every change is on disk before the command returns.
    StoreOptions {
        sync: SyncMode::Strict,
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(300),
        ..StoreOptions::default()
    }
}

fn who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{user} (cli)")
}

fn now_ms() -> i64 {
    keyfence_gateway::now_ms()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

// ---------------------------------------------------------------------------------------------
// config check

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a gateway config and report every problem at once (exit 2 when any).
    Check {
        /// The gateway config (TOML; docs/gateway.md).
        file: PathBuf,
    },
}

pub fn config(cmd: &ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Check { file } => {
            let c = GatewayConfig::load(file).map_err(|e| usage(e.to_string()))?;
            say(&format!(
                "{}: ok ({} listener(s): {}; {} polic{}: {})",
                file.display(),
                c.listeners.len(),
                c.listeners
                    .keys()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.policies.len(),
                if c.policies.len() == 1 { "y" } else { "ies" },
                c.policies.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// serve

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The gateway config (TOML; docs/gateway.md).
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Threads that serve requests (default: one per core). Each runs the connections handed
    /// to it from start to finish on a runtime of its own, with its own connections to the
    /// exchange, so a request never changes threads (see docs/benchmarks.md).
    #[arg(long, value_name = "N", env = "KEYFENCE_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

pub async fn serve(g: &Globals, args: ServeArgs) -> Result<()> {
    let cfg = GatewayConfig::load(&args.config).map_err(|e| usage(e.to_string()))?;
    let home = home(g)?;
    let vault = unlock_with_secrets(g, &home)?;
    let stop = crate::StopSignal::install().map_err(|e| failure(1, format!("{e:#}")))?;
    let threads = args
        .threads
        .map_or_else(keyfence_gateway::default_threads, usize::from);
    let running = keyfence_gateway::start_with(cfg, home.dir(), vault, threads)
        .await
        .map_err(|e| failure(1, e.to_string()))?;
    let bots = running.gateway.bots();
    for (venue, addr) in &running.addrs {
        let scheme = if running.gateway.config.listeners[venue].tls.is_some() {
            "https"
        } else {
            "http"
        };
        say(&format!(
            "{:<9} {scheme}://{addr} -> {}",
            venue.as_str(),
            running.gateway.config.listeners[venue].upstream
        ));
    }
    for (venue, path) in &running.certs {
        say(&format!(
            "{:<9} certificate {}",
            venue.as_str(),
            path.display()
        ));
    }
    say(&format!(
        "gateway running: {} bot credential(s), kill switch {}; Ctrl-C stops it",
        bots.len(),
        running.gateway.mode().as_str()
    ));
    stop.wait().await;
    say("stopping: finishing in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// Open the vault and make sure it holds the gateway's secrets (saving it if they were made now).
fn unlock_with_secrets(g: &Globals, home: &keyfence_vault::Home) -> Result<keyfence_vault::Vault> {
    let (mut vault, key) = crate::vault::open(g, home)?;
    if vault.ensure_gateway_secrets()? {
        vault.save(&key)?;
        eprintln!(
            "created the gateway's secrets in the vault (bot-credential seal and journal signing key)"
        );
    }
    Ok(vault)
}

// ---------------------------------------------------------------------------------------------
// bot

#[derive(Subcommand, Debug)]
pub enum BotCommand {
    /// Issue credentials for a bot, in its exchange's own format, bound to a real vault key and
    /// a policy. Printed once.
    #[command(after_long_help = BOT_ADD_EXAMPLES)]
    Add(BotAddArgs),
    /// The bots and their credentials' state (never secrets).
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a bot: its requests are refused from the next one on.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue new credentials; the old ones stay valid for the overlap, then stop working.
    #[command(
        after_long_help = "Example:\n  keyfence bot rotate grid-bot --overlap 24h --format json"
    )]
    Rotate {
        name: String,
        /// How long the old credentials keep working (e.g. 30m, 24h, 7d; 0 ends them now).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        overlap: Duration,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
}

const BOT_ADD_EXAMPLES: &str = "Examples:
  keyfence bot add grid-bot --key binance-main --policy spot-conservative --config gateway.toml
  keyfence bot add grid-bot --key binance-main --policy spot --allow-ip 203.0.113.7 --format json
  keyfence bot add ed-bot --key binance-main --policy spot --public-key bot-ed25519.pub.pem

Then point the bot at the gateway's listener for that exchange, with these credentials.";

#[derive(Args, Debug)]
pub struct BotAddArgs {
    /// The bot's name (1-64 letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// The vault label of the real key the bot trades through.
    #[arg(long, value_name = "VAULT_LABEL")]
    pub key: String,
    /// The policy (a [policies.NAME] in the gateway config).
    #[arg(long)]
    pub policy: String,
    /// Source addresses the bot may call from (IP or CIDR; repeatable; default: any).
    #[arg(long = "allow-ip", value_name = "CIDR")]
    pub allow_ip: Vec<String>,
    /// Binance only: register the bot's own Ed25519 public key (PEM file) instead of issuing an
    /// HMAC secret.
    #[arg(long, value_name = "PEM_FILE")]
    pub public_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub store: StoreArgs,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 30m, 24h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" | "" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{s}` is not a duration such as 30m, 24h or 7d")),
    };
    Ok(Duration::from_secs(secs))
}

pub async fn bot(g: &Globals, cmd: BotCommand) -> Result<()> {
    match cmd {
        BotCommand::Add(args) => bot_add(g, args).await,
        BotCommand::List { format, store } => {
            let cfg = store.load()?;
            let st = open_store(g, cfg.as_ref()).await?;
            let bots = st.bots().await.map_err(|e| failure(1, e.to_string()))?;
            bot_list(&bots, format);
            Ok(())
        }
        BotCommand::Revoke { name, store } => {
            let cfg = store.load()?;
            let st = open_store(g, cfg.as_ref()).await?;
            st.revoke_bot(&name, &who()).await.map_err(store_failure)?;
            say(&format!(
                "bot `{name}` revoked: its requests are refused from now on"
            ));
            Ok(())
        }
        BotCommand::Rotate {
            name,
            overlap,
            format,
            store,
        } => {
            let cfg = store.load()?;
            let home = home(g)?;
            let st = open_store(g, cfg.as_ref()).await?;
            let bots = st.bots().await.map_err(|e| failure(1, e.to_string()))?;
            let bot = bots.iter().find(|b| b.name == name).ok_or_else(|| {
                usage(format!(
                    "no bot named `{name}`; `keyfence bot list` shows them"
                ))
            })?;
            if bot.revoked_ms.is_some() {
                return Err(usage(format!(
                    "bot `{name}` is revoked; add a new bot instead"
                )));
            }
            if bot
                .credentials
                .iter()
                .any(|c| c.public_key.is_some() && c.sealed.is_none())
                && bot.venue == keyfence_types::Venue::Binance
            {
                return Err(usage(
                    "this bot registered its own Ed25519 key; add a new bot with the new public key",
                ));
            }
            let vault = unlock_with_secrets(g, &home)?;
            let rng = ring::rand::SystemRandom::new();
            let issued = issue(bot.venue, None, &rng).map_err(|e| failure(1, e.to_string()))?;
            let cred = seal(&vault, &issued, now_ms())?;
            let until =
                now_ms().saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX));
            st.rotate_bot(&name, &cred, until)
                .await
                .map_err(store_failure)?;
            print_issued(&name, bot.venue, &issued, format, Some(overlap));
            Ok(())
        }
    }
}

fn store_failure(e: keyfence_store::StoreError) -> Failure {
    let msg = e.to_string();
    // Refusals about names are the user's to fix.
    let code = if msg.contains("already") || msg.contains("no bot") || msg.contains("unknown") {
        2
    } else {
        1
    };
    failure(code, msg)
}

fn seal(vault: &keyfence_vault::Vault, issued: &Issued, now: i64) -> Result<BotCredential> {
    let secrets = vault
        .gateway_secrets()
        .ok_or_else(|| failure(1, "the vault has no gateway secrets"))?;
    let sealed = if issued.keep.is_secret() {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&issued.keep)
                .map_err(|_| failure(1, "cannot encode the credential"))?,
        );
        Some(secrets.seal(&plain)?)
    } else {
        None
    };
    let mut id = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| failure(1, "no randomness"))?;
    Ok(BotCredential {
        id: hex::encode(id),
        api_key: issued.api_key.clone(),
        sealed,
        public_key: if issued.keep.is_secret() {
            None
        } else {
            issued.keep.public_key.clone()
        },
        created_ms: now,
        valid_until_ms: None,
    })
}

async fn bot_add(g: &Globals, args: BotAddArgs) -> Result<()> {
    if !valid_name(&args.name) {
        return Err(usage(format!(
            "bot name `{}`: use 1-64 letters, digits, `.`, `_` or `-`",
            args.name.chars().take(80).collect::<String>()
        )));
    }
    for ip in &args.allow_ip {
        ip.parse::<keyfence_gateway::cidr::Cidr>()
            .map_err(|e| usage(e.to_string()))?;
    }
    let cfg = args.store.load()?;
    match &cfg {
        Some(c) if !c.policies.contains_key(&args.policy) => {
            return Err(usage(format!(
                "no policy `{}` in {}; it has: {}",
                args.policy,
                c.origin.display(),
                c.policies.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        Some(_) => {}
        None => eprintln!(
            "note: policy `{}` not checked (no --config); the gateway refuses the bot's requests if its config lacks it",
            args.policy
        ),
    }
    let public_key = match &args.public_key {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| usage(format!("cannot read the public key `{}`: {e}", p.display())))?,
        ),
        None => None,
    };
    let home = home(g)?;
    let (mut vault, key) = crate::vault::open(g, &home)?;
    let venue = vault
        .get(&args.key)
        .ok_or_else(|| {
            usage(format!(
                "no vault key labelled `{}`; `keyfence vault list` shows them",
                args.key
            ))
        })?
        .meta
        .exchange;
    // Checked before anything is written: a refused command changes nothing.
    let bots = open_store(g, cfg.as_ref()).await?;
    if bots
        .bots()
        .await
        .map_err(|e| failure(1, e.to_string()))?
        .iter()
        .any(|b| b.name == args.name)
    {
        return Err(usage(format!(
            "a bot named `{}` already exists; `keyfence bot rotate {}` issues new credentials",
            args.name, args.name
        )));
    }
    if vault.ensure_gateway_secrets()? {
        vault.save(&key)?;
        eprintln!(
            "created the gateway's secrets in the vault (bot-credential seal and journal signing key)"
        );
    }
    let rng = ring::rand::SystemRandom::new();
    let issued = issue(venue, public_key.as_deref(), &rng).map_err(|e| usage(e.to_string()))?;
    let now = now_ms();
    let cred = seal(&vault, &issued, now)?;
    bots.add_bot(&BotRecord {
        name: args.name.clone(),
        venue,
        key_label: args.key.clone(),
        policy: args.policy.clone(),
        allow_ips: args.allow_ip.clone(),
        created_ms: now,
        revoked_ms: None,
        credentials: vec![cred],
    })
    .await
    .map_err(store_failure)?;
    print_issued(&args.name, venue, &issued, args.format, None);
    Ok(())
}

fn print_issued(
    name: &str,
    venue: keyfence_types::Venue,
    issued: &Issued,
    format: Format,
    overlap: Option<Duration>,
) {
    match format {
        Format::Json => say(&issued.to_json().to_string()),
        Format::Table => {
            say(&format!(
                "bot `{name}` on {venue}: credentials (shown once; store them in the bot's config):"
            ));
            say(&format!("  api_key      {}", issued.api_key));
            if let Some(s) = &issued.secret {
                say(&format!("  secret       {}", s.expose()));
            }
            if let Some(s) = &issued.passphrase {
                say(&format!("  passphrase   {}", s.expose()));
            }
            if let Some(s) = &issued.private_key {
                say("  private_key");
                for l in s.expose().lines() {
                    say(&format!("    {l}"));
                }
            }
            if let Some(o) = overlap {
                say(&format!(
                    "the previous credentials keep working for {}s, then are refused",
                    o.as_secs()
                ));
            }
        }
    }
}

fn bot_list(bots: &[BotRecord], format: Format) {
    let now = now_ms();
    let live = |c: &BotCredential| c.valid_until_ms.is_none_or(|t| t > now);
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = bots
                .iter()
                .map(|b| {
                    serde_json::json!({
                        "name": b.name,
                        "exchange": b.venue,
                        "key": b.key_label,
                        "policy": b.policy,
                        "allow_ips": b.allow_ips,
                        "created_ms": b.created_ms,
                        "revoked_ms": b.revoked_ms,
                        "credentials": b.credentials.iter().map(|c| serde_json::json!({
                            "id": c.id,
                            "api_key": c.api_key,
                            "created_ms": c.created_ms,
                            "valid_until_ms": c.valid_until_ms,
                            "live": live(c) && b.revoked_ms.is_none(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            say(&serde_json::Value::Array(v).to_string());
        }
        Format::Table => {
            if bots.is_empty() {
                say(
                    "no bots; add one with `keyfence bot add NAME --key VAULT_LABEL --policy POLICY`",
                );
                return;
            }
            say(&format!(
                "{:<20} {:<9} {:<20} {:<20} {:<8} {:<5} {}",
                "NAME", "EXCHANGE", "KEY", "POLICY", "STATE", "CREDS", "ALLOW-IP"
            ));
            for b in bots {
                let state = if b.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let n = b.credentials.iter().filter(|c| live(c)).count();
                say(&format!(
                    "{:<20} {:<9} {:<20} {:<20} {:<8} {:<5} {}",
                    b.name,
                    b.venue.as_str(),
                    b.key_label,
                    b.policy,
                    state,
                    n,
                    if b.allow_ips.is_empty() {
                        "any".to_owned()
                    } else {
                        b.allow_ips.join(",")
                    }
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kill / resume

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Reducing instead of Halted: only cancels and reduce-only orders pass.
    #[arg(long)]
    pub reduce: bool,
    /// Also cancel the open orders of every account a bot trades through.
    #[arg(long)]
    pub cancel_open: bool,
    /// Why (journaled).
    #[arg(long, default_value = "manual kill switch")]
    pub reason: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn kill(g: &Globals, args: KillArgs) -> Result<()> {
    let cfg = args.store.load()?;
    let st = open_store(g, cfg.as_ref()).await?;
    let mode = if args.reduce {
        Mode::Reducing
    } else {
        Mode::Halted
    };
    st.set_mode(mode, &who(), &args.reason)
        .await
        .map_err(|e| failure(1, e.to_string()))?;
    say(&format!(
        "kill switch: {} (a running gateway obeys within 100 ms)",
        mode.as_str()
    ));
    if args.cancel_open {
        let Some(cfg) = cfg else {
            return Err(usage(
                "--cancel-open needs --config (the upstreams to cancel at)",
            ));
        };
        let home = home(g)?;
        let (vault, _) = crate::vault::open(g, &home)?;
        let bots = st.bots().await.map_err(|e| failure(1, e.to_string()))?;
        let report = crate::cancel::cancel_open(&cfg, &vault, &bots).await;
        for line in &report.lines {
            say(line);
        }
        if report.failed > 0 {
            return Err(failure(
                1,
                format!(
                    "{} account(s) could not be fully cancelled; the switch is set",
                    report.failed
                ),
            ));
        }
    }
    Ok(())
}

pub async fn resume(g: &Globals, store: StoreArgs, reason: String) -> Result<()> {
    let cfg = store.load()?;
    let st = open_store(g, cfg.as_ref()).await?;
    st.set_mode(Mode::Active, &who(), &reason)
        .await
        .map_err(|e| failure(1, e.to_string()))?;
    say("kill switch: active (trading resumes)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// journal

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub enum JournalCommand {
    /// The last entries.
    Tail {
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Recompute the hash chain and check every signed checkpoint; names the first bad entry
    /// (exit 1) when anything was altered, removed or reordered.
    Verify {
        /// Pin the checkpoint public key (hex, as `verify` prints it) instead of trusting the store's.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Every entry, one JSON object per line.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write here (refuses to overwrite) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn journal(g: &Globals, cmd: JournalCommand) -> Result<()> {
    match cmd {
        JournalCommand::Tail {
            lines,
            format,
            store,
        } => {
            let cfg = store.load()?;
            let st = open_store(g, cfg.as_ref()).await?;
            let entries = st
                .tail(lines)
                .await
                .map_err(|e| failure(1, e.to_string()))?;
            match format {
                Format::Json => {
                    let v =
                        serde_json::to_value(&entries).map_err(|e| failure(1, e.to_string()))?;
                    say(&v.to_string());
                }
                Format::Table => {
                    say(&format!(
                        "{:>6} {:<24} {:<12} {:<9} {:<10} {:<10} {:<5} {:<8} {:<24} {:>6}",
                        "SEQ",
                        "TIME",
                        "BOT",
                        "EXCHANGE",
                        "CLASS",
                        "SYMBOL",
                        "SIDE",
                        "DECISION",
                        "RULES",
                        "STATUS"
                    ));
                    for e in &entries {
                        say(&format!(
                            "{:>6} {:<24} {:<12} {:<9} {:<10} {:<10} {:<5} {:<8} {:<24} {:>6}",
                            e.seq,
                            time_str(e.ts_ms),
                            e.bot.as_deref().unwrap_or("-"),
                            e.venue.map_or("-", |v| v.as_str()),
                            e.class.as_deref().unwrap_or(e.kind.as_str()),
                            e.symbol.as_deref().unwrap_or("-"),
                            e.side.as_deref().unwrap_or("-"),
                            e.decision,
                            if e.rules.is_empty() {
                                "-".to_owned()
                            } else {
                                e.rules.join(",")
                            },
                            e.upstream_status.map_or("-".to_owned(), |s| s.to_string()),
                        ));
                    }
                }
            }
            Ok(())
        }
        JournalCommand::Verify {
            public_key,
            format,
            store,
        } => {
            let cfg = store.load()?;
            let st = open_store(g, cfg.as_ref()).await?;
            let pinned = match &public_key {
                Some(h) => Some(hex::decode(h.trim()).map_err(|_| usage("--public-key is hex"))?),
                None => None,
            };
            let r = st
                .verify(pinned.as_deref())
                .await
                .map_err(|e| failure(1, e.to_string()))?;
            match format {
                Format::Json => say(
                    &serde_json::json!({
                        "ok": r.first_bad.is_none(),
                        "entries": r.entries,
                        "checkpoints": r.checkpoints,
                        "first_bad": r.first_bad.as_ref().map(|(seq, why)| serde_json::json!({"seq": seq, "reason": why})),
                        "public_key": r.public_key_hex,
                    })
                    .to_string(),
                ),
                Format::Table => match &r.first_bad {
                    None => say(&format!(
                        "journal ok: {} entries, {} signed checkpoint(s){}",
                        r.entries,
                        r.checkpoints,
                        r.public_key_hex
                            .as_ref()
                            .map(|k| format!(", checkpoint key {k}"))
                            .unwrap_or_default()
                    )),
                    Some((seq, why)) => say(&format!("journal BAD at entry {seq}: {why}")),
                },
            }
            match r.first_bad {
                None => Ok(()),
                Some((seq, _)) => Err(failure(
                    1,
                    format!("the journal does not verify (first bad entry: {seq})"),
                )),
            }
        }
        JournalCommand::Export {
            format: ExportFormat::Jsonl,
            output,
            store,
        } => {
            let cfg = store.load()?;
            let st = open_store(g, cfg.as_ref()).await?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(create_new(p)?),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut after = 0;
            loop {
                let batch = st
                    .entries(after, 1000)
                    .await
                    .map_err(|e| failure(1, e.to_string()))?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for e in &batch {
                    let line = serde_json::to_string(e).map_err(|e| failure(1, e.to_string()))?;
                    writeln!(out, "{line}")
                        .map_err(|e| failure(1, format!("cannot write: {e}")))?;
                }
            }
            out.flush()
                .map_err(|e| failure(1, format!("cannot write: {e}")))?;
            Ok(())
        }
    }
}

fn create_new(p: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p)
        .map_err(|e| usage(format!("cannot create `{}`: {e}", p.display())))
}

fn time_str(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
