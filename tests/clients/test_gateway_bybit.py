"""ccxt and pybit through the gateway (`keyfence serve`) with bot credentials: allowed orders
reach the simulated Bybit signed with the real key; refusals are the clients' own permission
errors, journaled once, and never reach the simulator. Fixtures: conftest.py `gateway`.

pybit raises one class, `InvalidRequestError`, for every non-zero `retCode` (it has no
permission-error class), so its refusals assert that exact class and Bybit's permission code
10005 in `status_code`."""

from decimal import Decimal

import ccxt
import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from gwhelp import refused, signed

VENUE = "bybit"
REAL_KEY = "gw-bybit-key"
ACCOUNT = "gw-bybit"
PRICE = Decimal("60000")


@pytest.fixture(scope="module")
def bots(gateway):
    return {"ccxt": gateway.bot(VENUE), "pybit": gateway.bot(VENUE)}


@pytest.fixture(autouse=True)
def _bybit_price(sim):
    # test_bybit.py moves the price; the band and the caps are computed from 60000.
    sim.set_price(VENUE, "BTCUSDT", PRICE)


def make_ccxt(gateway, creds, secret=None):
    ex = ccxt.bybit({"apiKey": creds["api_key"], "secret": secret or creds["secret"],
                     "timeout": 5000, "enableRateLimit": False})
    for k in list(ex.urls["api"].keys()):
        ex.urls["api"][k] = gateway.url(VENUE)
    return ex


def make_pybit(gateway, creds, secret=None):
    s = HTTP(api_key=creds["api_key"], api_secret=secret or creds["secret"], timeout=5, max_retries=1,
             retry_delay=0)
    s.endpoint = gateway.url(VENUE)
    return s


def account(sim):
    return sim.state(VENUE)["accounts"][ACCOUNT]


def balances(sim):
    return {a: (Decimal(str(b["free"])), Decimal(str(b["locked"]))) for a, b in account(sim)["balances"].items()}


def assert_real_key_only(sim, since, bot_key):
    reqs = signed(sim, VENUE, since)
    assert reqs, "nothing reached the simulator"
    assert all(r["headers"]["x-bapi-api-key"] == REAL_KEY for r in reqs)
    assert all(bot_key not in str(r) for r in reqs)


def creates(sim, since):
    return [r for r in signed(sim, VENUE, since) if r["path"] == "/v5/order/create"]


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_orders_fill_with_the_real_key(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    ex.load_markets()
    before = balances(sim)
    seq = sim.last_seq()
    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 55000)
    market = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert limit["id"] in [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] + Decimal("0.01")
    assert mid["USDT"][1] == before["USDT"][1] + Decimal("550")
    ex.cancel_order(limit["id"], "BTC/USDT")
    assert balances(sim)["USDT"][1] == before["USDT"][1]
    orders = {str(o["id"]): o for o in account(sim)["orders"]}
    assert orders[str(market["id"])]["status"] == "filled"
    assert [r["status"] for r in creates(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["ccxt"]["api_key"])


def test_ccxt_refusals_are_permission_denied(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    ex.load_markets()
    before = balances(sim)
    transfers = len(account(sim)["transfers"])
    cases = [
        ("class-not-allowed", lambda: ex.withdraw("USDT", 10, "0x000000000000000000000000000000000000dEaD")),
        ("class-not-allowed", lambda: ex.transfer("USDT", 25, "unified", "funding")),
        ("max-order-notional", lambda: ex.create_order("BTC/USDT", "market", "buy", 0.1)),
        ("symbol-not-allowed", lambda: ex.create_order("ETH/USDT", "limit", "buy", 0.1, 3000)),
        ("price-band", lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, ccxt.PermissionDenied, call)
        assert rule in str(e)
    assert balances(sim) == before
    assert len(account(sim)["transfers"]) == transfers


def test_ccxt_kill_switch_refuses_new_orders(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    ex.load_markets()
    gateway.kill()
    try:
        refused(gateway, sim, VENUE, "kill-switch-halted", ccxt.PermissionDenied,
                lambda: ex.create_order("BTC/USDT", "market", "buy", 0.001))
    finally:
        gateway.resume()
    assert ex.create_order("BTC/USDT", "market", "buy", 0.001)["id"]


def test_ccxt_wrong_bot_secret_is_an_authentication_error(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"], secret="x" * 36)
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert type(info.value) is ccxt.AuthenticationError
    assert signed(sim, VENUE, seq) == []


# ---------------------------------------------------------------------------------------------
# pybit


def test_pybit_orders_fill_with_the_real_key(gateway, sim, bots):
    s = make_pybit(gateway, bots["pybit"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01",
                          price="56000")
    limit_id = limit["result"]["orderId"]
    market = s.place_order(category="spot", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.01")
    market_id = market["result"]["orderId"]
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] - Decimal("0.01")
    assert mid["USDT"][1] == before["USDT"][1] + Decimal("560")
    assert s.cancel_order(category="spot", symbol="BTCUSDT", orderId=limit_id)["result"]["orderId"] == limit_id
    orders = {str(o["id"]): o for o in account(sim)["orders"]}
    assert orders[str(market_id)]["status"] == "filled"
    assert orders[str(limit_id)]["status"] == "canceled"
    assert [r["status"] for r in creates(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["pybit"]["api_key"])


def test_pybit_refusals_are_permission_errors(gateway, sim, bots):
    s = make_pybit(gateway, bots["pybit"])
    before = balances(sim)

    def order(symbol="BTCUSDT", qty="0.01", price=None):
        if price is None:
            return lambda: s.place_order(category="spot", symbol=symbol, side="Buy", orderType="Market",
                                         qty=qty, marketUnit="baseCoin")
        return lambda: s.place_order(category="spot", symbol=symbol, side="Buy", orderType="Limit", qty=qty,
                                     price=price)

    cases = [
        ("class-not-allowed", lambda: s.withdraw(coin="USDT", chain="ETH", amount="10", timestamp=1,
                                                 address="0x000000000000000000000000000000000000dEaD")),
        ("class-not-allowed", lambda: s.create_internal_transfer(
            transferId="0b7d2f0e-0000-4000-8000-00000000aa01", coin="USDT", amount="5",
            fromAccountType="UNIFIED", toAccountType="FUND")),
        ("max-order-notional", order(qty="0.1")),
        ("symbol-not-allowed", order(symbol="ETHUSDT", qty="0.1", price="3000")),
        ("price-band", order(price="30000")),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, InvalidRequestError, call)
        assert e.status_code == 10005, rule
        assert rule in e.message
    assert balances(sim) == before


def test_pybit_kill_switch_refuses_new_orders(gateway, sim, bots):
    s = make_pybit(gateway, bots["pybit"])

    def buy():
        return s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="60")

    gateway.kill()
    try:
        e = refused(gateway, sim, VENUE, "kill-switch-halted", InvalidRequestError, buy)
        assert e.status_code == 10005
    finally:
        gateway.resume()
    assert buy()["result"]["orderId"]


def test_pybit_wrong_bot_secret_is_refused(gateway, sim, bots):
    s = make_pybit(gateway, bots["pybit"], secret="x" * 36)
    seq = sim.last_seq()
    with pytest.raises(InvalidRequestError) as info:
        s.get_wallet_balance(accountType="UNIFIED")
    assert type(info.value) is InvalidRequestError
    assert info.value.status_code == 10004
    assert signed(sim, VENUE, seq) == []
