//! `rules check`: every bundled rule loads, validates and passes its own examples; broken rule
//! files are refused with a reason.

#![allow(clippy::unwrap_used)] // test code: a missing bundled file should fail loudly
use keyfence_audit::rules::{BUNDLED, RuleSet};
use keyfence_audit::{check_bundled, check_sources};

#[test]
fn bundled_rules_pass_their_examples() {
    let report = check_bundled();
    assert!(report.ok(), "{:#?}", report.problems);
    assert_eq!(report.rules, BUNDLED.len());
    assert!(report.examples >= 2 * report.rules, "{}", report.examples);
    assert_eq!(
        RuleSet::bundled().map(|r| r.len()).ok(),
        Some(BUNDLED.len())
    );
}

fn with_replaced(file: &str, text: &str) -> Vec<(&'static str, String)> {
    BUNDLED
        .iter()
        .map(|(f, t)| {
            let t = if *f == file {
                text.to_owned()
            } else {
                (*t).to_owned()
            };
            (*f, t)
        })
        .collect()
}

fn problems(sources: &[(&str, String)]) -> Vec<String> {
    let borrowed: Vec<(&str, &str)> = sources.iter().map(|(f, t)| (*f, t.as_str())).collect();
    check_sources(&borrowed).problems
}

fn original(file: &str) -> &'static str {
    BUNDLED
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, t)| *t)
        .unwrap()
}

#[test]
fn unknown_rule_id_is_refused() {
    let mut sources: Vec<(&str, String)> =
        BUNDLED.iter().map(|(f, t)| (*f, (*t).to_owned())).collect();
    let text = original("key-shared.toml").replace("id = \"key-shared\"", "id = \"made-up\"");
    sources.push(("made-up.toml", text));
    let p = problems(&sources);
    assert!(
        p.iter().any(|m| m.contains("unknown rule id `made-up`")),
        "{p:?}"
    );
}

#[test]
fn missing_venue_remedy_is_refused() {
    let text: String = original("withdraw-enabled.toml")
        .lines()
        .filter(|l| !l.starts_with("kraken ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = problems(&with_replaced("withdraw-enabled.toml", &text));
    assert!(
        p.iter().any(|m| m.contains("missing remedy for kraken")),
        "{p:?}"
    );
}

#[test]
fn bad_severity_is_refused() {
    let text = original("withdraw-enabled.toml")
        .replace("severity = \"critical\"", "severity = \"severe\"");
    let p = problems(&with_replaced("withdraw-enabled.toml", &text));
    assert!(
        p.iter().any(|m| m.contains("unknown severity `severe`")),
        "{p:?}"
    );
}

#[test]
fn unknown_venue_and_missing_file_are_refused() {
    let text = original("withdraw-enabled.toml").replace("kraken = ", "ftx = \"x\"\nkraken = ");
    let mut sources = with_replaced("withdraw-enabled.toml", &text);
    sources.retain(|(f, _)| *f != "cannot-trade.toml");
    let p = problems(&sources);
    assert!(
        p.iter().any(|m| m.contains("unknown exchange `ftx`")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("no rule file for `cannot-trade`")),
        "{p:?}"
    );
}

#[test]
fn an_example_that_disagrees_with_the_rule_fails_the_check() {
    // A negative example that is in fact positive.
    let text = original("withdraw-enabled.toml").replace(
        "note = \"binance spot key without withdrawals\"\nvenue = \"binance\"\npermissions = [\"read\", \"spot-trade\"]",
        "note = \"binance spot key without withdrawals\"\nvenue = \"binance\"\npermissions = [\"read\", \"spot-trade\", \"withdraw\"]",
    );
    let p = problems(&with_replaced("withdraw-enabled.toml", &text));
    assert!(
        p.iter()
            .any(|m| m.contains("negative example") && m.contains("the rule fired")),
        "{p:?}"
    );
    // A positive example expecting the wrong severity.
    let text =
        original("rotation-overdue.toml").replace("severity = \"high\"", "severity = \"low\"");
    let p = problems(&with_replaced("rotation-overdue.toml", &text));
    assert!(
        p.iter().any(|m| m.contains("severity high not low")),
        "{p:?}"
    );
}

#[test]
fn unknown_fields_in_a_rule_file_are_refused() {
    let text = format!("colour = \"red\"\n{}", original("key-shared.toml"));
    let p = problems(&with_replaced("key-shared.toml", &text));
    assert!(
        p.iter()
            .any(|m| m.contains("key-shared.toml: not a rule file")),
        "{p:?}"
    );
}

#[test]
fn every_remedy_speaks_of_its_own_venue() {
    let rules = RuleSet::bundled().unwrap();
    for rule in rules.iter() {
        assert_eq!(rule.remedy.len(), 5, "{}", rule.id);
        for (venue, text) in &rule.remedy {
            let name = match venue {
                keyfence_types::Venue::Okx => "OKX:".to_owned(),
                v => {
                    let s = v.as_str();
                    format!("{}{}:", s[..1].to_uppercase(), &s[1..])
                }
            };
            assert!(text.starts_with(&name), "{} {venue}: {text}", rule.id);
        }
    }
}
