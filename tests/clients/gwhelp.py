"""Shared checks for test_gateway_*.py: a refusal is the client's own exception, one `deny`
journal entry with the expected rule id, and the refused request never reached the simulator.

Clients may read before the refused call (ccxt asks Bybit for the key's account type before a
withdrawal, say): those reads are allowed and forwarded. What must not reach the simulator is
any credentialed request to the refused endpoint (the journal's `path`, lower-cased and
normalised as keyfence reads it)."""

import pytest

# The header that carries the api key, per venue, as the simulator logs it (lower case).
KEY_HEADER = {
    "binance": "x-mbx-apikey",
    "bybit": "x-bapi-api-key",
    "okx": "ok-access-key",
    "kraken": "api-key",
}


def signed(sim, venue, since):
    """Requests the simulator received for `venue` after `since` that carry credentials (the
    gateway's own public ticker polls carry none)."""
    out = []
    for r in sim.requests(venue, since=since):
        h = r["headers"]
        if venue == "coinbase":
            if "authorization" in h:
                out.append(r)
        elif KEY_HEADER[venue] in h:
            out.append(r)
    return out


def refused(gateway, sim, venue, rule, exc, call):
    """Run `call`, which must raise exactly `exc`; then check the journal has exactly one `deny`
    entry, with `rule`, and that no credentialed request reached the simulator meanwhile.
    Returns the exception."""
    jseq = gateway.last_seq()
    sseq = sim.last_seq()
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) is exc, f"{type(info.value).__mro__} is not exactly {exc}"
    check_journal(gateway.journal(jseq), venue, rule)
    assert_not_reached(sim, venue, sseq, gateway.journal(jseq))
    return info.value


def check_journal(entries, venue, rule):
    """Exactly one `deny`, with `rule`; anything else the gateway let through meanwhile was a
    read (a client's look-up before the refused call)."""
    requests = [e for e in entries if e["kind"] == "request"]
    denies = [e for e in requests if e["decision"] == "deny"]
    assert len(denies) == 1, denies
    assert denies[0]["rules"] == [rule], denies[0]
    assert denies[0]["venue"] == venue
    others = [e for e in requests if e["decision"] != "deny"]
    assert all(e["decision"] == "allow" and e["class"] == "read" for e in others), others


def canonical(path):
    return "/" + "/".join(s for s in path.split("/") if s).lower()


def assert_not_reached(sim, venue, since, entries):
    (deny,) = [e for e in entries if e["decision"] == "deny"]
    assert deny["path"], deny
    reached = [r for r in signed(sim, venue, since) if canonical(r["path"]) == deny["path"]]
    assert reached == [], f"the refused request reached the simulator: {reached}"


def denied_body(gateway, sim, venue, rule, call):
    """For clients that return error bodies instead of raising (python-okx): the same checks on
    a returned body. Returns it."""
    jseq = gateway.last_seq()
    sseq = sim.last_seq()
    body = call()
    entries = gateway.journal(jseq)
    check_journal(entries, venue, rule)
    assert_not_reached(sim, venue, sseq, entries)
    return body
