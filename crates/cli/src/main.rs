//! The `keyfence` binary: one command per capability.

mod audit;
mod cancel;
mod demo;
mod gateway;
mod rules;
mod vault;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// keyfence keeps trading bots' exchange API keys safe.
///
/// Start with `keyfence demo`: it runs everything on the built-in exchange simulator.
#[derive(Parser)]
#[command(name = "keyfence", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    globals: vault::Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A short tour on the built-in simulator: signed requests per exchange, refusals, fills.
    Demo,
    /// Run the exchange simulator (paper Binance, Bybit, OKX, Coinbase, Kraken) until Ctrl-C.
    ///
    /// The config is TOML; see docs/sim-config.md and examples/sim.toml.
    Sim {
        /// Simulator config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Ask each exchange what each vault key can do, grade it, and say what to change.
    ///
    /// Findings come from the rules in `keyfence rules list` (docs/audit.md). Formats: table,
    /// json (docs/audit-json.md), markdown, sarif (GitHub code scanning).
    Audit(audit::AuditArgs),
    /// The audit's rules: `check` validates them and runs their examples, `list` shows them.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Create the data directory (mode 0700) and an empty encrypted vault.
    ///
    /// The vault is encrypted with a passphrase (KEYFENCE_PASSPHRASE, --passphrase-file, or a
    /// prompt without echo), or, when only --identity FILE is given, to that age identity's
    /// recipient (for unattended servers). Other commands create it when needed.
    #[command(after_long_help = INIT_EXAMPLES)]
    Init,
    /// The encrypted store of real exchange keys (see docs/vault.md).
    ///
    /// Exit codes: 0 ok; 1 the vault could not be read or written (damaged file, I/O error,
    /// full disk; nothing was changed); 2 usage or configuration error.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Run the signing gateway: bots talk to it as to their exchange; it checks, re-signs with
    /// the real key, forwards and journals (docs/gateway.md).
    #[command(after_long_help = SERVE_EXAMPLES)]
    Serve(gateway::ServeArgs),
    /// Gateway configuration: `check FILE` reports every problem at once.
    #[command(subcommand)]
    Config(gateway::ConfigCommand),
    /// Bot credentials: add (issued in the exchange's own format), list, revoke, rotate.
    #[command(subcommand)]
    Bot(gateway::BotCommand),
    /// Kill switch: refuse every new order (Halted), or only allow reducing ones (--reduce).
    ///
    /// Reads and cancels still pass. A running gateway obeys within 100 ms. Journaled.
    Kill(gateway::KillArgs),
    /// Lift the kill switch (Active). Journaled.
    Resume {
        /// Why (journaled).
        #[arg(long, default_value = "manual resume")]
        reason: String,
        #[command(flatten)]
        store: gateway::StoreArgs,
    },
    /// The tamper-evident journal of every request: tail, verify, export.
    #[command(subcommand)]
    Journal(gateway::JournalCommand),
}

const SERVE_EXAMPLES: &str = "Examples:
  keyfence config check gateway.toml
  keyfence bot add grid-bot --key binance-main --policy spot-conservative --config gateway.toml
  KEYFENCE_PASSPHRASE=... keyfence serve --config gateway.toml

Exit codes: 0 stopped cleanly; 1 cannot start (store, vault, bind); 2 configuration error.";

const INIT_EXAMPLES: &str = "Examples:
  keyfence init                                      # prompts for a new passphrase
  KEYFENCE_HOME=/srv/keyfence keyfence init --identity /etc/keyfence/age.key
  age-keygen -o /etc/keyfence/age.key                # makes such an identity file";

/// mimalloc: the gateway allocates and frees on several threads (requests, journal writer); glibc's
/// malloc spent ~15% of its CPU there (perf, `scripts/bench-gateway`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFENCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One TLS provider for the whole process.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();

    let cli = Cli::parse();
    // Pure and synchronous commands need no runtime.
    let command = match cli.command {
        Command::Rules { command } => return rules::run(&command),
        Command::Init => return vault_exit(vault::init(&cli.globals)),
        Command::Vault(cmd) => return vault_exit(vault::run(&cli.globals, cmd)),
        Command::Config(cmd) => return vault_exit(gateway::config(&cmd)),
        other => other,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The gateway serves requests on threads of its own (`--threads`); this runtime only
    // accepts connections and runs the background tasks.
    if let Command::Serve(_) = &command {
        builder.worker_threads(1);
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let command = match command {
        Command::Audit(args) => {
            return match rt.block_on(audit::run(&cli.globals, args)) {
                Ok(code) => ExitCode::from(code),
                Err(f) => {
                    eprintln!("error: {}", f.message);
                    ExitCode::from(f.code)
                }
            };
        }
        Command::Serve(args) => return vault_exit(rt.block_on(gateway::serve(&cli.globals, args))),
        Command::Bot(cmd) => return vault_exit(rt.block_on(gateway::bot(&cli.globals, cmd))),
        Command::Kill(args) => return vault_exit(rt.block_on(gateway::kill(&cli.globals, args))),
        Command::Resume { reason, store } => {
            return vault_exit(rt.block_on(gateway::resume(&cli.globals, store, reason)));
        }
        Command::Journal(cmd) => {
            return vault_exit(rt.block_on(gateway::journal(&cli.globals, cmd)));
        }
        other => other,
    };
    let result = rt.block_on(async {
        match command {
            Command::Demo => demo::run().await,
            Command::Sim { config } => run_sim(config).await,
            _ => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn vault_exit(result: Result<(), vault::Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run_sim(path: PathBuf) -> anyhow::Result<()> {
    let cfg = keyfence_sim::SimConfig::load(&path)?;
    let sim = keyfence_sim::start(&cfg)
        .await
        .context("cannot start the simulator")?;
    // Listen for the stop signal before saying we run, so an early Ctrl-C is never missed.
    let stop = StopSignal::install()?;
    for venue in sim.venues.keys() {
        if let Some(url) = sim.base_url(*venue) {
            say(&format!("{venue:<9} {url}"));
        }
    }
    say(&format!("admin     http://{}", sim.admin));
    say("simulator running; Ctrl-C stops it");
    stop.wait().await;
    say("stopping");
    sim.shutdown().await;
    Ok(())
}

/// Ctrl-C (SIGINT) or SIGTERM, registered at once.
pub(crate) struct StopSignal {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub(crate) fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                int: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignal {})
    }

    pub(crate) async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Print a line; a closed stdout (the reader went away) must not stop a server.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
