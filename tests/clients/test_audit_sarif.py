"""The audit's SARIF output validates against the official SARIF 2.1.0 JSON schema.

`crates/audit/tests/data/audit.sarif` is the SARIF renderer's output for a sample batch; the
Rust test `render::sarif_log` keeps it identical to what the renderer produces. The schema is
OASIS SARIF 2.1.0 errata01 (see crates/audit/tests/data/SOURCES.md).
"""

import json
import pathlib

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "crates" / "audit" / "tests" / "data"


def load(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def test_audit_sarif_is_valid_sarif_2_1_0():
    schema = load("sarif-schema-2.1.0.json")
    log = load("audit.sarif")
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert log["version"] == "2.1.0"
    assert log["runs"][0]["results"], "the sample has findings"


def test_schema_rejects_a_broken_log():
    # The validation has teeth: a result without its message is refused.
    schema = load("sarif-schema-2.1.0.json")
    log = load("audit.sarif")
    del log["runs"][0]["results"][0]["message"]
    assert list(jsonschema.Draft4Validator(schema).iter_errors(log))


def test_github_code_scanning_expectations():
    # What GitHub's upload adds on top of the schema: a driver name, rule ids resolvable by
    # index, a location with an artifact URI per result, security-severity as a number string.
    log = load("audit.sarif")
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"]
        assert loc["region"]["startLine"] >= 1
    for rule in rules:
        sev = rule["properties"].get("security-severity")
        if sev is not None:
            assert 0.0 <= float(sev) <= 10.0
