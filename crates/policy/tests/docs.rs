//! The example in docs/policy.md is a valid config, and the doc names every rule id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use keyfence_policy::{PolicyConfig, rule};

const DOC: &str = include_str!("../../../docs/policy.md");

#[derive(serde::Deserialize)]
struct Gateway {
    policies: BTreeMap<String, PolicyConfig>,
}

#[test]
fn the_documented_example_parses_without_problems() {
    let start = DOC.find("```toml\n").unwrap() + "```toml\n".len();
    let len = DOC[start..].find("```").unwrap();
    let g: Gateway = toml::from_str(&DOC[start..start + len]).unwrap();
    assert_eq!(g.policies.len(), 2);
    for (name, p) in &g.policies {
        assert!(p.problems().is_empty(), "{name}: {:?}", p.problems());
    }
    let grid = &g.policies["grid-bot"];
    assert_eq!(grid.trading_hours.as_deref(), Some("22:00-06:00"));
    assert_eq!(grid.max_position.len(), 2);
}

#[test]
fn the_doc_names_every_rule_id() {
    for id in rule::ALL {
        assert!(
            DOC.contains(&format!("| `{id}` |")),
            "docs/policy.md lacks {id}"
        );
    }
}
