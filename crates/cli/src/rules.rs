//! `keyfence rules check` and `keyfence rules list`: the bundled audit rules.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate every bundled audit rule and run its positive and negative examples.
    Check,
    /// List the bundled audit rules: id, severity, title.
    List,
}

pub fn run(command: &RulesCommand) -> ExitCode {
    match command {
        RulesCommand::Check => check(),
        RulesCommand::List => list(),
    }
}

fn check() -> ExitCode {
    let report = keyfence_audit::check_bundled();
    if report.ok() {
        crate::say(&format!(
            "{} rules, {} examples: ok",
            report.rules, report.examples
        ));
        ExitCode::SUCCESS
    } else {
        for p in &report.problems {
            eprintln!("error: {p}");
        }
        eprintln!("{} problems", report.problems.len());
        ExitCode::from(1)
    }
}

fn list() -> ExitCode {
    let rules = match keyfence_audit::RuleSet::bundled() {
        Ok(r) => r,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            return ExitCode::from(2);
        }
    };
    let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    crate::say(&format!("{:<width$}  {:<8}  TITLE", "RULE", "SEVERITY"));
    for r in rules.iter() {
        crate::say(&format!(
            "{:<width$}  {:<8}  {}",
            r.id,
            r.severity.as_str(),
            r.title
        ));
    }
    ExitCode::SUCCESS
}
