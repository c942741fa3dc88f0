"""ccxt and coinbase-advanced-py through the gateway (`keyfence serve`, its Coinbase listener on
TLS: the SDK speaks https only) with bot credentials: allowed orders reach the simulated
Coinbase with a JWT of the real key; refusals are the clients' permission errors, journaled
once, and never reach the simulator. Fixtures: conftest.py `gateway`.

coinbase-advanced-py has no exception classes of its own: every error answer is
`requests.exceptions.HTTPError` (`raise_for_status`), so its refusals assert exactly that class
with status 403 and Coinbase's PERMISSION_DENIED body."""

import base64
import json
import uuid
from decimal import Decimal

import ccxt
import pytest
import requests
from coinbase.rest import RESTClient

from gwhelp import refused, signed

VENUE = "coinbase"
REAL_KEY = "organizations/coinbase-sim/apiKeys/gw-es256"
ACCOUNT = "gw-coinbase"


@pytest.fixture(scope="module")
def bots(gateway):
    return {"ccxt": gateway.bot(VENUE), "sdk": gateway.bot(VENUE)}


@pytest.fixture
def tls(gateway, monkeypatch):
    """Both clients use requests: trust the gateway listener's self-signed certificate."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", gateway.cert(VENUE))
    return gateway


def make_ccxt(gateway, creds, secret=None):
    ex = ccxt.coinbase({"apiKey": creds["api_key"], "secret": secret or creds["private_key"], "timeout": 5000,
                        "enableRateLimit": False, "requests_trust_env": True})
    ex.urls["api"]["rest"] = gateway.url(VENUE)
    ex.load_markets()
    return ex


def make_sdk(gateway, creds, secret=None):
    return RESTClient(api_key=creds["api_key"], api_secret=secret or creds["private_key"],
                      base_url=gateway.host(VENUE), timeout=5)


def account(sim):
    return sim.state(VENUE)["accounts"][ACCOUNT]


def balances(sim):
    return {a: (Decimal(str(b["free"])), Decimal(str(b["locked"]))) for a, b in account(sim)["balances"].items()}


def jwt_claims(request):
    token = request["headers"]["authorization"].split(" ", 1)[1]
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def assert_real_key_only(sim, since, bot_key):
    reqs = signed(sim, VENUE, since)
    assert reqs, "nothing reached the simulator"
    for r in reqs:
        claims = jwt_claims(r)
        assert claims["sub"] == REAL_KEY
        # The real key's JWT binds the upstream host, not the gateway's listener the bot used.
        assert claims["uri"] == f'{r["method"]} {sim.host(VENUE)}{r["path"]}', claims
        assert bot_key not in str(r)


def order_posts(sim, since):
    return [r for r in signed(sim, VENUE, since) if r["path"] == "/api/v3/brokerage/orders"]


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_orders_fill_with_the_real_key(tls, sim, bots):
    gateway = tls
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = ex.create_order("BTC/USD", "limit", "buy", 0.01, 55000)
    sell = ex.create_order("BTC/USD", "market", "sell", 0.01)
    assert ex.fetch_order(limit["id"])["status"] == "open"
    got = ex.fetch_order(sell["id"])
    assert got["status"] == "closed" and got["filled"] == 0.01 and got["average"] == 60000
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] - Decimal("0.01")
    assert mid["USD"][1] == before["USD"][1] + Decimal("550")
    ex.cancel_order(limit["id"], "BTC/USD")
    assert balances(sim)["USD"][1] == before["USD"][1]
    assert [r["status"] for r in order_posts(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["ccxt"]["api_key"])


def test_ccxt_refusals_are_permission_denied(tls, sim, bots):
    gateway = tls
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    cases = [
        # account_id given, so ccxt does not look the account up first.
        ("class-not-allowed", lambda: ex.withdraw("BTC", 0.01, "bc1qgatewaydestination0000000000",
                                                  params={"account_id": str(uuid.uuid4())})),
        ("class-not-allowed", lambda: ex.transfer("USD", 10, str(uuid.uuid4()), str(uuid.uuid4()))),
        ("max-order-notional", lambda: ex.create_order("BTC/USD", "market", "sell", 0.1)),
        ("symbol-not-allowed", lambda: ex.create_order("ETH/USD", "limit", "buy", 0.1, 3000)),
        ("price-band", lambda: ex.create_order("BTC/USD", "limit", "buy", 0.01, 30000)),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, ccxt.PermissionDenied, call)
        assert rule in str(e)
    assert balances(sim) == before


def test_ccxt_kill_switch_refuses_new_orders(tls, sim, bots):
    gateway = tls
    ex = make_ccxt(gateway, bots["ccxt"])
    gateway.kill()
    try:
        refused(gateway, sim, VENUE, "kill-switch-halted", ccxt.PermissionDenied,
                lambda: ex.create_order("BTC/USD", "market", "sell", 0.001))
    finally:
        gateway.resume()
    assert ex.create_order("BTC/USD", "market", "sell", 0.001)["id"]


def test_ccxt_wrong_bot_key_is_an_authentication_error(tls, sim, bots):
    gateway = tls
    # The other bot's private key under this bot's name: a valid JWT the gateway must not accept.
    ex = ccxt.coinbase({"apiKey": bots["ccxt"]["api_key"], "secret": bots["sdk"]["private_key"], "timeout": 5000,
                        "enableRateLimit": False, "requests_trust_env": True})
    ex.urls["api"]["rest"] = gateway.url(VENUE)
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert type(info.value) is ccxt.AuthenticationError
    assert signed(sim, VENUE, seq) == []


# ---------------------------------------------------------------------------------------------
# coinbase-advanced-py


def test_sdk_orders_fill_with_the_real_key(tls, sim, bots):
    gateway = tls
    client = make_sdk(gateway, bots["sdk"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = client.limit_order_gtc_buy(client_order_id=uuid.uuid4().hex, product_id="BTC-USD",
                                       base_size="0.01", limit_price="56000")
    assert limit["success"] is True, limit
    limit_id = limit["success_response"]["order_id"]
    buy = client.market_order_buy(client_order_id=uuid.uuid4().hex, product_id="BTC-USD", quote_size="600")
    assert buy["success"] is True, buy
    assert client.get_order(buy["success_response"]["order_id"])["order"]["status"] == "FILLED"
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] + Decimal("0.01")
    assert mid["USD"][1] == before["USD"][1] + Decimal("560")
    assert client.cancel_orders(order_ids=[limit_id])["results"][0]["success"] is True
    assert balances(sim)["USD"][1] == before["USD"][1]
    assert [r["status"] for r in order_posts(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["sdk"]["api_key"])


def test_sdk_refusals_are_http_403(tls, sim, bots):
    gateway = tls
    client = make_sdk(gateway, bots["sdk"])
    before = balances(sim)

    def oid():
        return uuid.uuid4().hex

    cases = [
        # No send-crypto method in the SDK: its own signed transport, on Coinbase's v2 path.
        ("class-not-allowed", lambda: client.post(f"/v2/accounts/{uuid.uuid4()}/transactions",
                                                  data={"type": "send", "to": "bc1qgatewaydestination0000000000",
                                                        "amount": "0.01", "currency": "BTC"})),
        ("class-not-allowed", lambda: client.move_portfolio_funds(value="10", currency="USD",
                                                                  source_portfolio_uuid=str(uuid.uuid4()),
                                                                  target_portfolio_uuid=str(uuid.uuid4()))),
        ("max-order-notional", lambda: client.market_order_buy(client_order_id=oid(), product_id="BTC-USD",
                                                               quote_size="6000")),
        ("symbol-not-allowed", lambda: client.limit_order_gtc_buy(client_order_id=oid(), product_id="ETH-USD",
                                                                  base_size="0.1", limit_price="3000")),
        ("price-band", lambda: client.limit_order_gtc_buy(client_order_id=oid(), product_id="BTC-USD",
                                                          base_size="0.01", limit_price="30000")),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, requests.exceptions.HTTPError, call)
        assert e.response.status_code == 403
        assert "PERMISSION_DENIED" in e.response.text and rule in e.response.text
    assert balances(sim) == before


def test_sdk_kill_switch_refuses_new_orders(tls, sim, bots):
    gateway = tls
    client = make_sdk(gateway, bots["sdk"])

    def buy():
        return client.market_order_buy(client_order_id=uuid.uuid4().hex, product_id="BTC-USD", quote_size="60")

    gateway.kill()
    try:
        e = refused(gateway, sim, VENUE, "kill-switch-halted", requests.exceptions.HTTPError, buy)
        assert e.response.status_code == 403
    finally:
        gateway.resume()
    assert buy()["success"] is True


def test_sdk_wrong_bot_key_is_refused_401(tls, sim, bots):
    gateway = tls
    client = make_sdk(gateway, bots["sdk"], secret=bots["ccxt"]["private_key"])
    seq = sim.last_seq()
    with pytest.raises(requests.exceptions.HTTPError) as info:
        client.get_accounts()
    assert info.value.response.status_code == 401
    assert signed(sim, VENUE, seq) == []
