"""ccxt and python-kraken-sdk through the gateway (`keyfence serve`) with bot credentials:
allowed orders reach the simulated Kraken signed with the real key (and a nonce keyfence draws);
refusals are the clients' own permission errors, journaled once, and never reach the simulator.
Fixtures: conftest.py `gateway`."""

import functools
from decimal import Decimal

import ccxt
import pytest
from kraken.exceptions import KrakenInvalidAPIKeyError, KrakenPermissionDeniedError
from kraken.spot import Funding, Trade, User

from gwhelp import refused, signed

VENUE = "kraken"
REAL_KEY = "gw-kraken-key"
ACCOUNT = "gw-kraken"
TIMEOUT_S = 5
WRONG_SECRET = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXQtMDAwMDA="


@pytest.fixture(scope="module")
def bots(gateway):
    return {"ccxt": gateway.bot(VENUE), "sdk": gateway.bot(VENUE)}


def make_ccxt(gateway, creds, secret=None):
    ex = ccxt.kraken({"apiKey": creds["api_key"], "secret": secret or creds["secret"],
                      "timeout": TIMEOUT_S * 1000, "enableRateLimit": False})
    ex.urls["api"]["public"] = gateway.url(VENUE)
    ex.urls["api"]["private"] = gateway.url(VENUE)
    ex.load_markets()
    return ex


def sdk(cls, gateway, creds, secret=None):
    """A python-kraken-sdk client on the gateway, every request bounded to a few seconds."""
    client = cls(key=creds["api_key"], secret=secret or creds["secret"], url=gateway.url(VENUE))
    session = client._SpotClient__session
    original = session.request

    @functools.wraps(original)
    def bounded(*args, **kwargs):
        kwargs["timeout"] = TIMEOUT_S
        return original(*args, **kwargs)

    session.request = bounded
    return client


def account(sim):
    return sim.state(VENUE)["accounts"][ACCOUNT]


def balances(sim):
    return {a: (Decimal(str(b["free"])), Decimal(str(b["locked"]))) for a, b in account(sim)["balances"].items()}


def assert_real_key_only(sim, since, bot_key):
    reqs = signed(sim, VENUE, since)
    assert reqs, "nothing reached the simulator"
    assert all(r["headers"]["api-key"] == REAL_KEY for r in reqs)
    assert all(bot_key not in str(r) for r in reqs)


def add_orders(sim, since):
    return [r for r in signed(sim, VENUE, since) if r["path"] == "/0/private/AddOrder"]


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_orders_fill_with_the_real_key(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = ex.create_order("BTC/USD", "limit", "buy", 0.01, 55000)
    market = ex.create_order("BTC/USD", "market", "buy", 0.01)
    assert limit["id"] in [o["id"] for o in ex.fetch_open_orders("BTC/USD")]
    mid = balances(sim)
    assert mid["XXBT"][0] == before["XXBT"][0] + Decimal("0.01")
    assert mid["ZUSD"][1] == before["ZUSD"][1] + Decimal("550")
    ex.cancel_order(limit["id"], "BTC/USD")
    assert balances(sim)["ZUSD"][1] == before["ZUSD"][1]
    filled = ex.fetch_order(market["id"], "BTC/USD")
    assert filled["status"] == "closed" and filled["filled"] == 0.01
    adds = add_orders(sim, seq)
    assert [r["status"] for r in adds] == [200, 200]
    assert_real_key_only(sim, seq, bots["ccxt"]["api_key"])


def test_ccxt_refusals_are_permission_denied(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    cases = [
        ("class-not-allowed", lambda: ex.withdraw("BTC", 0.05, None, {"key": "gw-cold-wallet"})),
        ("class-not-allowed", lambda: ex.transfer("USD", 100, "spot", "swap")),
        ("max-order-notional", lambda: ex.create_order("BTC/USD", "market", "buy", 0.1)),
        ("symbol-not-allowed", lambda: ex.create_order("ETH/USD", "limit", "buy", 0.1, 3000)),
        ("price-band", lambda: ex.create_order("BTC/USD", "limit", "buy", 0.01, 30000)),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, ccxt.PermissionDenied, call)
        assert rule in str(e)
    assert balances(sim) == before


def test_ccxt_kill_switch_refuses_new_orders(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    gateway.kill()
    try:
        refused(gateway, sim, VENUE, "kill-switch-halted", ccxt.PermissionDenied,
                lambda: ex.create_order("BTC/USD", "market", "buy", 0.001))
    finally:
        gateway.resume()
    assert ex.create_order("BTC/USD", "market", "buy", 0.001)["id"]


def test_ccxt_wrong_bot_secret_is_an_authentication_error(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"], secret=WRONG_SECRET)
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert type(info.value) is ccxt.AuthenticationError
    assert "EAPI:Invalid key" in str(info.value)
    assert signed(sim, VENUE, seq) == []


# ---------------------------------------------------------------------------------------------
# python-kraken-sdk


def test_sdk_orders_fill_with_the_real_key(gateway, sim, bots):
    trade = sdk(Trade, gateway, bots["sdk"])
    before = balances(sim)
    seq = sim.last_seq()
    placed = trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="0.01", price="56000")
    limit_id = placed["txid"][0]
    sold = trade.create_order(ordertype="market", side="sell", pair="XBTUSD", volume="0.01")
    assert sold["txid"]
    mid = balances(sim)
    assert mid["XXBT"][0] == before["XXBT"][0] - Decimal("0.01")
    assert mid["ZUSD"][1] == before["ZUSD"][1] + Decimal("560")
    assert trade.cancel_order(txid=limit_id)["count"] == 1
    assert balances(sim)["ZUSD"][1] == before["ZUSD"][1]
    assert [r["status"] for r in add_orders(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["sdk"]["api_key"])


def test_sdk_refusals_are_permission_denied(gateway, sim, bots):
    trade = sdk(Trade, gateway, bots["sdk"])
    funding = sdk(Funding, gateway, bots["sdk"])
    before = balances(sim)
    cases = [
        ("class-not-allowed", lambda: funding.withdraw_funds(asset="XBT", key="gw-cold-wallet", amount="0.1")),
        ("class-not-allowed", lambda: funding.wallet_transfer(asset="ZUSD", from_="Spot Wallet",
                                                              to_="Futures Wallet", amount="100")),
        ("max-order-notional", lambda: trade.create_order(ordertype="market", side="buy", pair="XBTUSD",
                                                          volume="0.1")),
        ("symbol-not-allowed", lambda: trade.create_order(ordertype="limit", side="buy", pair="ETHUSD",
                                                          volume="0.1", price="3000")),
        ("price-band", lambda: trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="0.01",
                                                  price="30000")),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, KrakenPermissionDeniedError, call)
        assert rule in str(e)
    assert balances(sim) == before


def test_sdk_kill_switch_refuses_new_orders(gateway, sim, bots):
    trade = sdk(Trade, gateway, bots["sdk"])

    def buy():
        return trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.001")

    gateway.kill()
    try:
        refused(gateway, sim, VENUE, "kill-switch-halted", KrakenPermissionDeniedError, buy)
    finally:
        gateway.resume()
    assert buy()["txid"]


def test_sdk_wrong_bot_secret_is_an_invalid_key_error(gateway, sim, bots):
    user = sdk(User, gateway, bots["sdk"], secret=WRONG_SECRET)
    seq = sim.last_seq()
    with pytest.raises(KrakenInvalidAPIKeyError):
        user.get_balances()
    assert signed(sim, VENUE, seq) == []
