//! The `keyfence` binary: one command per capability.

mod demo;
mod rules;

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
    /// The audit's rules: `check` validates them and runs their examples, `list` shows them.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
}

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
    // Pure commands need no runtime.
    if let Command::Rules { command } = &cli.command {
        return rules::run(command);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Demo => demo::run().await,
            Command::Sim { config } => run_sim(config).await,
            Command::Rules { .. } => Ok(()),
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
struct StopSignal {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> anyhow::Result<Self> {
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

    async fn wait(mut self) {
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
