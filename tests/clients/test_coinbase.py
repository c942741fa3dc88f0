"""Real clients against the simulated Coinbase: ccxt and coinbase-advanced-py, unchanged but for
the base URL. The simulator fragment is `sim.d/coinbase.toml` (TLS on: the official SDK only
speaks https; both clients trust the simulator's certificate through REQUESTS_CA_BUNDLE).
"""

import base64
import json
import uuid
from decimal import Decimal

import ccxt
import pytest
import requests
from coinbase.rest import RESTClient

VENUE = "coinbase"
ORG = "organizations/coinbase-sim/apiKeys/"

# Test keys made once for this file; their public halves are in sim.d/coinbase.toml.
CCXT_ES256 = (
    ORG + "ccxt-es256",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIO6+wo3A0kH5U5Of0fawERQ1ef++qoVMZphMERk2Bl+hoAoGCCqGSM49\n"
    "AwEHoUQDQgAETS8rIfbhf++qMpHFPQYDDEox5sXA7UwNblE6wLz4KTvdgo5k0KlF\n"
    "Xxo7exp9LLCcKMRVgk/QeGr784SG5bnmIA==\n-----END EC PRIVATE KEY-----\n",
)
CCXT_ED25519 = (
    ORG + "ccxt-ed25519",
    "5gZmdK8OshNwExYa4IE3HEWIutpoiBRdkZ5LJxNaAAAanwDePu6/P6tk1Rz2tnQaxCsUrWm411bJGPMMTWeYBQ==",
)
SDK_ED25519 = (
    ORG + "sdk-ed25519",
    "bMg4TuyaPUWn3vWORlhJRELwfMbxfjTYDPL9p4+Jo7IHKYz2Os/8yUAvn2PwAbp3osgUYC6MtrkTJXreUl9RVA==",
)
SDK_ES256 = (
    ORG + "sdk-es256",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIHdWWXqHnSt7NYvDWhR8VjQoLU628gL0tz7slIE9AcEsoAoGCCqGSM49\n"
    "AwEHoUQDQgAERxB6mrv6HWE/OZ5Lx9/aJh9HyQ7H5LQo7ugcV+MvlulrsppDga+w\n"
    "1bHOAYugD7CHCzzTFjl6PrXwzKkS61zjGA==\n-----END EC PRIVATE KEY-----\n",
)
# Allowlisted to 10.1.2.3 only.
IP_BLOCKED = (
    ORG + "ipblock",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEILc0Y3Hvqn4jGf+LMwZpJfqxWLaxM2jbx/NHQs7kx7qMoAoGCCqGSM49\n"
    "AwEHoUQDQgAEtY2L/ySZaf7gNniP7UsJ2AQDxESWzLQNbHnHOvwE2cqkJQaRx/pq\n"
    "2OoKpmi5z+/5gQwHEblc7B79wcCbOiENpg==\n-----END EC PRIVATE KEY-----\n",
)
# can_view only.
VIEW_ONLY = (
    ORG + "viewonly",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIGgZLMTwEkHNwtWFXBS4W0PKvFXNEsZvcUTYrmRWv7KpoAoGCCqGSM49\n"
    "AwEHoUQDQgAE4qEJRbamic99X0y0khIVfcUm2YyO50oL1ywKPdO5gqqlnkQObHQ2\n"
    "Nc41XfUd/Gvp1sOlXfcvWofQy1KwJA5/ww==\n-----END EC PRIVATE KEY-----\n",
)


@pytest.fixture
def tls(sim, monkeypatch):
    """Both clients use requests: trust the simulator's self-signed certificate."""
    assert sim.cert_path, "sim.d/coinbase.toml must set tls = true"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.cert_path)
    return sim


def ledger(sim, account):
    """Balances as the simulator's ledger holds them: {asset: (free, locked)}."""
    bals = sim.state(VENUE)["accounts"][account]["balances"]
    return {a: (Decimal(b["free"]), Decimal(b["locked"])) for a, b in bals.items()}


def jwt_header(request):
    token = request["headers"]["authorization"].split(" ", 1)[1]
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def sent(sim, since, method, path):
    return [r for r in sim.requests(VENUE, since=since) if r["method"] == method and r["path"] == path]


# ---------------------------------------------------------------------------------------------
# ccxt


def make_ccxt(sim, key):
    # ccxt's requests session ignores the environment unless `requests_trust_env` is set (and
    # `verify=<path>` is collapsed to True by ccxt), so trust REQUESTS_CA_BUNDLE through it.
    ex = ccxt.coinbase(
        {
            "apiKey": key[0],
            "secret": key[1],
            "timeout": 5000,
            "enableRateLimit": False,
            "requests_trust_env": True,
        }
    )
    ex.urls["api"]["rest"] = sim.url(VENUE)
    return ex


def test_ccxt_trading_flow(tls):
    sim = tls
    ex = make_ccxt(sim, CCXT_ES256)
    seq = sim.last_seq()
    ex.load_markets()
    assert ex.market("BTC/USD")["id"] == "BTC-USD"
    assert ex.fetch_ticker("BTC/USD")["last"] == 60000

    before = ledger(sim, "coinbase-ccxt")
    bal = ex.fetch_balance()
    assert Decimal(str(bal["BTC"]["total"])) == before["BTC"][0] + before["BTC"][1]
    assert Decimal(str(bal["USD"]["total"])) == before["USD"][0] + before["USD"][1]

    # A resting limit buy far below the market locks 0.01 * 30000 USD.
    limit = ex.create_order("BTC/USD", "limit", "buy", 0.01, 30000)
    assert limit["id"]
    after_limit = ledger(sim, "coinbase-ccxt")
    assert after_limit["USD"][1] - before["USD"][1] == Decimal("300")
    assert limit["id"] in [o["id"] for o in ex.fetch_open_orders("BTC/USD")]
    assert ex.fetch_order(limit["id"])["status"] == "open"

    # Market buy (ccxt sends quote_size = amount * price) and market sell (base_size).
    buy = ex.create_order("BTC/USD", "market", "buy", 0.01, 60000)
    sell = ex.create_order("BTC/USD", "market", "sell", 0.02)
    for o, filled in ((buy, 0.01), (sell, 0.02)):
        got = ex.fetch_order(o["id"])
        assert got["status"] == "closed"
        assert got["filled"] == filled
        assert got["average"] == 60000
    after_market = ledger(sim, "coinbase-ccxt")
    assert after_market["BTC"][0] - after_limit["BTC"][0] == Decimal("-0.01")
    assert after_market["USD"][0] - after_limit["USD"][0] == Decimal("600")

    # Cancel the limit: it leaves the open list and the funds are released.
    ex.cancel_order(limit["id"], "BTC/USD")
    assert limit["id"] not in [o["id"] for o in ex.fetch_open_orders("BTC/USD")]
    assert ex.fetch_order(limit["id"])["status"] == "canceled"
    assert ledger(sim, "coinbase-ccxt")["USD"][1] == before["USD"][1]

    trades = ex.fetch_my_trades("BTC/USD")
    mine = {t["order"]: t for t in trades}
    assert mine[buy["id"]]["amount"] == 0.01 and mine[buy["id"]]["price"] == 60000
    assert mine[sell["id"]]["amount"] == 0.02

    perms = ex.v3PrivateGetBrokerageKeyPermissions()
    assert perms["can_view"] is True and perms["can_trade"] is True and perms["can_transfer"] is False

    # What reached the exchange: signed ES256 JWTs, and the orders and the cancel.
    orders = sent(sim, seq, "POST", "/api/v3/brokerage/orders")
    assert len(orders) == 3 and all(r["status"] == 200 for r in orders)
    configs = [json.loads(r["body"])["order_configuration"] for r in orders]
    assert configs[1] == {"market_market_ioc": {"quote_size": "600"}}
    assert configs[2] == {"market_market_ioc": {"base_size": "0.02"}}
    assert len(sent(sim, seq, "POST", "/api/v3/brokerage/orders/batch_cancel")) == 1
    assert jwt_header(orders[0])["alg"] == "ES256"


def test_ccxt_eddsa_key_reads_balances(tls):
    sim = tls
    ex = make_ccxt(sim, CCXT_ED25519)
    seq = sim.last_seq()
    bal = ex.fetch_balance()
    assert bal["ETH"]["total"] > 0
    v2 = sent(sim, seq, "GET", "/v2/accounts")
    assert v2 and v2[-1]["status"] == 200
    assert jwt_header(v2[-1])["alg"] == "EdDSA"


def test_ccxt_wrong_secret_is_an_authentication_error(tls):
    sim = tls
    ex = make_ccxt(sim, (CCXT_ES256[0], SDK_ES256[1]))
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()
    assert any(r["status"] == 401 for r in sim.requests(VENUE, since=seq))
    assert not sent(sim, seq, "POST", "/api/v3/brokerage/orders")


def test_ccxt_ip_not_allowed_is_an_authentication_error(tls):
    sim = tls
    ex = make_ccxt(sim, IP_BLOCKED)
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError):
        ex.v3PrivateGetBrokerageKeyPermissions()
    assert [r["status"] for r in sim.requests(VENUE, since=seq)] == [401]


def test_ccxt_view_only_key_cannot_trade(tls):
    sim = tls
    ex = make_ccxt(sim, VIEW_ONLY)
    ex.load_markets()
    seq = sim.last_seq()
    with pytest.raises(ccxt.PermissionDenied):
        ex.create_order("BTC/USD", "market", "sell", 0.01)
    assert [r["status"] for r in sent(sim, seq, "POST", "/api/v3/brokerage/orders")] == [403]


# ---------------------------------------------------------------------------------------------
# coinbase-advanced-py (official SDK)


def make_sdk(sim, key):
    return RESTClient(api_key=key[0], api_secret=key[1], base_url=sim.host(VENUE), timeout=5)


def test_sdk_trading_flow(tls):
    sim = tls
    client = make_sdk(sim, SDK_ED25519)
    seq = sim.last_seq()
    before = ledger(sim, "coinbase-sdk")

    accounts = {a["currency"]: a for a in client.get_accounts().to_dict()["accounts"]}
    assert Decimal(accounts["BTC"]["available_balance"]["value"]) == before["BTC"][0]
    assert Decimal(accounts["USD"]["hold"]["value"]) == before["USD"][1]
    assert client.get_product("BTC-USD")["price"] == "60000"

    limit = client.limit_order_gtc_buy(
        client_order_id=uuid.uuid4().hex, product_id="BTC-USD", base_size="0.01", limit_price="30000"
    )
    assert limit["success"] is True, limit
    limit_id = limit["success_response"]["order_id"]
    assert ledger(sim, "coinbase-sdk")["USD"][1] - before["USD"][1] == Decimal("300")
    open_ids = [o["order_id"] for o in client.list_orders(order_status=["OPEN"], product_ids=["BTC-USD"]).to_dict()["orders"]]
    assert limit_id in open_ids

    sell = client.market_order_sell(client_order_id=uuid.uuid4().hex, product_id="BTC-USD", base_size="0.01")
    buy = client.market_order_buy(client_order_id=uuid.uuid4().hex, product_id="ETH-USD", quote_size="300")
    assert sell["success"] is True and buy["success"] is True
    sell_id = sell["success_response"]["order_id"]
    buy_id = buy["success_response"]["order_id"]
    assert client.get_order(sell_id)["order"]["status"] == "FILLED"
    eth = client.get_order(buy_id)["order"]
    assert (eth["status"], eth["filled_size"]) == ("FILLED", "0.1")
    after = ledger(sim, "coinbase-sdk")
    assert after["BTC"][0] - before["BTC"][0] == Decimal("-0.01")
    assert after["ETH"][0] - before["ETH"][0] == Decimal("0.1")

    cancelled = client.cancel_orders(order_ids=[limit_id])
    assert cancelled["results"][0]["success"] is True
    assert client.get_order(limit_id)["order"]["status"] == "CANCELLED"
    open_ids = [o["order_id"] for o in client.list_orders(order_status=["OPEN"]).to_dict()["orders"]]
    assert limit_id not in open_ids
    assert ledger(sim, "coinbase-sdk")["USD"][1] == before["USD"][1]

    fills = client.get_fills(order_ids=[sell_id, buy_id]).to_dict()["fills"]
    assert sorted((f["product_id"], f["size"], f["price"]) for f in fills) == [
        ("BTC-USD", "0.01", "60000"),
        ("ETH-USD", "0.1", "3000"),
    ]

    perms = client.get_api_key_permissions()
    assert (perms["can_view"], perms["can_trade"], perms["can_transfer"]) == (True, True, False)

    orders = sent(sim, seq, "POST", "/api/v3/brokerage/orders")
    assert [r["status"] for r in orders] == [200, 200, 200]
    assert jwt_header(orders[0])["alg"] == "EdDSA"
    assert len(sent(sim, seq, "POST", "/api/v3/brokerage/orders/batch_cancel")) == 1


def test_sdk_es256_key_reads_permissions(tls):
    sim = tls
    perms = make_sdk(sim, SDK_ES256).get_api_key_permissions()
    assert perms["can_trade"] is True
    assert perms["portfolio_type"] == "DEFAULT"


def test_sdk_wrong_secret_is_refused_401(tls):
    sim = tls
    client = make_sdk(sim, (SDK_ED25519[0], CCXT_ED25519[1]))
    with pytest.raises(requests.exceptions.HTTPError) as e:
        client.get_accounts()
    assert e.value.response.status_code == 401


def test_sdk_ip_not_allowed_is_refused_401(tls):
    sim = tls
    seq = sim.last_seq()
    with pytest.raises(requests.exceptions.HTTPError) as e:
        make_sdk(sim, IP_BLOCKED).market_order_sell(
            client_order_id=uuid.uuid4().hex, product_id="BTC-USD", base_size="0.01"
        )
    assert e.value.response.status_code == 401
    assert [r["status"] for r in sent(sim, seq, "POST", "/api/v3/brokerage/orders")] == [401]


def test_sdk_view_only_key_misses_scopes(tls):
    sim = tls
    client = make_sdk(sim, VIEW_ONLY)
    assert client.get_api_key_permissions()["can_trade"] is False
    with pytest.raises(requests.exceptions.HTTPError) as e:
        client.market_order_buy(client_order_id=uuid.uuid4().hex, product_id="BTC-USD", quote_size="10")
    assert e.value.response.status_code == 403
    assert "Missing Required Scopes" in str(e.value)


def test_rate_limit_maps_to_each_clients_error(tls):
    sim = tls
    ex = make_ccxt(sim, CCXT_ES256)
    client = make_sdk(sim, SDK_ES256)
    try:
        sim.faults(VENUE, rate_limits=2, retry_after_s=1)
        with pytest.raises(ccxt.RateLimitExceeded):
            ex.v3PrivateGetBrokerageKeyPermissions()
        with pytest.raises(requests.exceptions.HTTPError) as e:
            client.get_api_key_permissions()
        assert e.value.response.status_code == 429
        assert e.value.response.headers["retry-after"] == "1"
    finally:
        sim.faults(VENUE)
    assert client.get_api_key_permissions()["can_view"] is True
