"""ccxt and binance-sdk-spot through the gateway (`keyfence serve`) with bot credentials: allowed
orders reach the simulator signed with the real key; refusals are the clients' own permission
errors, journaled once, and never reach the simulator. Fixtures: conftest.py `gateway`."""

import decimal
import re

import ccxt
import pytest
from binance_common.configuration import ConfigurationRestAPI
from binance_common.errors import ForbiddenError, UnauthorizedError
from binance_common.utils import send_request
from binance_sdk_spot.rest_api.models import (
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import Spot

from gwhelp import refused, signed

VENUE = "binance"
REAL_KEY = "gw-binance-key"
ACCOUNT = "gw-binance"
D = decimal.Decimal


@pytest.fixture(scope="module")
def bots(gateway):
    return {"ccxt": gateway.bot(VENUE), "sdk": gateway.bot(VENUE)}


def make_ccxt(gateway, creds, secret=None):
    ex = ccxt.binance(
        {
            "apiKey": creds["api_key"],
            "secret": secret or creds["secret"],
            "timeout": 5000,
            "enableRateLimit": False,
        }
    )
    base = gateway.url(VENUE)
    ex.urls["api"] = {
        name: re.sub(r"^https://[^/]+", base, url) if isinstance(url, str) else url
        for name, url in ex.urls["api"].items()
    }
    # Spot only: the signed currency list (/sapi/v1/capital/config/getall) is not needed.
    ex.options["fetchCurrencies"] = False
    ex.options["fetchMargins"] = False
    ex.load_markets()
    return ex


def make_sdk(gateway, creds, secret=None):
    cfg = ConfigurationRestAPI(
        api_key=creds["api_key"],
        api_secret=secret or creds["secret"],
        base_path=gateway.url(VENUE),
        timeout=5000,
        retries=0,
    )
    return Spot(config_rest_api=cfg).rest_api


def balances(sim):
    acct = sim.state(VENUE)["accounts"][ACCOUNT]
    return {a: (D(str(b["free"])), D(str(b["locked"]))) for a, b in acct["balances"].items()}


def field(obj, name):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def assert_real_key_only(sim, since, bot_key):
    reqs = signed(sim, VENUE, since)
    assert reqs, "nothing reached the simulator"
    assert all(r["headers"]["x-mbx-apikey"] == REAL_KEY for r in reqs)
    assert all(bot_key not in str(r) for r in reqs)


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_orders_fill_with_the_real_key(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 55000)
    assert limit["status"] == "open"
    market = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert market["status"] == "closed" and market["filled"] == 0.01 and market["average"] == 60000
    after = balances(sim)
    assert after["BTC"][0] == before["BTC"][0] + D("0.01")
    assert after["USDT"][1] == before["USDT"][1] + D("550")
    assert limit["id"] in [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    assert ex.cancel_order(limit["id"], "BTC/USDT")["status"] == "canceled"
    assert balances(sim)["USDT"][1] == before["USDT"][1]

    posts = [r for r in signed(sim, VENUE, seq) if r["path"] == "/api/v3/order" and r["method"] == "POST"]
    assert [r["status"] for r in posts] == [200, 200]
    assert_real_key_only(sim, seq, bots["ccxt"]["api_key"])
    allowed = gateway.journal_where(lambda e: e["decision"] == "allow" and e.get("order_id") == str(market["id"]))
    assert len(allowed) == 1 and allowed[0]["bot"] == bots["ccxt"]["name"]


def test_ccxt_refusals_are_permission_denied(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    cases = [
        ("class-not-allowed", lambda: ex.withdraw("USDT", 100, "TXYZsimulatedaddress000000000000", params={"network": "TRX"})),
        ("class-not-allowed", lambda: ex.transfer("USDT", 10, "spot", "linear")),
        ("max-order-notional", lambda: ex.create_order("BTC/USDT", "market", "buy", 0.1)),
        ("symbol-not-allowed", lambda: ex.create_order("ETH/USDT", "limit", "buy", 0.1, 3000)),
        ("price-band", lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)),
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
                lambda: ex.create_order("BTC/USDT", "market", "buy", 0.001))
        # Reads still pass while halted.
        assert ex.fetch_balance()["USDT"]["free"] > 0
    finally:
        gateway.resume()
    assert ex.create_order("BTC/USDT", "market", "buy", 0.001)["status"] == "closed"


def test_ccxt_wrong_bot_secret_is_an_authentication_error(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"], secret="x" * 64)
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert type(info.value) is ccxt.AuthenticationError
    assert "-1022" in str(info.value)
    assert signed(sim, VENUE, seq) == []


# ---------------------------------------------------------------------------------------------
# binance-sdk-spot


def test_sdk_orders_fill_with_the_real_key(gateway, sim, bots):
    api = make_sdk(gateway, bots["sdk"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = api.new_order(
        symbol="BTCUSDT",
        side=NewOrderSideEnum.BUY,
        type=NewOrderTypeEnum.LIMIT,
        time_in_force=NewOrderTimeInForceEnum.GTC,
        quantity=0.01,
        price=56000.0,
    ).data()
    assert field(limit, "status") == "NEW"
    market = api.new_order(
        symbol="BTCUSDT", side=NewOrderSideEnum.SELL, type=NewOrderTypeEnum.MARKET, quantity=0.01
    ).data()
    assert field(market, "status") == "FILLED"
    assert D(field(market, "cummulative_quote_qty")) == D("600")
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] - D("0.01")
    assert mid["USDT"][1] == before["USDT"][1] + D("560")
    api.delete_order(symbol="BTCUSDT", order_id=field(limit, "order_id"))
    assert balances(sim)["USDT"][1] == before["USDT"][1]
    posts = [r for r in signed(sim, VENUE, seq) if r["path"] == "/api/v3/order" and r["method"] == "POST"]
    assert [r["status"] for r in posts] == [200, 200]
    assert_real_key_only(sim, seq, bots["sdk"]["api_key"])


def sdk_order(api, symbol="BTCUSDT", price=None, quantity=0.01):
    if price is None:
        return lambda: api.new_order(symbol=symbol, side=NewOrderSideEnum.BUY, type=NewOrderTypeEnum.MARKET,
                                     quantity=quantity)
    return lambda: api.new_order(symbol=symbol, side=NewOrderSideEnum.BUY, type=NewOrderTypeEnum.LIMIT,
                                 time_in_force=NewOrderTimeInForceEnum.GTC, quantity=quantity, price=price)


def test_sdk_refusals_are_forbidden(gateway, sim, bots):
    api = make_sdk(gateway, bots["sdk"])
    before = balances(sim)

    # The spot SDK has no wallet methods: its own signed transport, as its generated methods call it.
    def raw(path, params):
        return lambda: send_request(api._session, api.configuration, "POST", path, payload=params, is_signed=True)

    cases = [
        ("class-not-allowed", raw("/sapi/v1/capital/withdraw/apply",
                                  {"coin": "USDT", "network": "TRX", "address": "TXYZsimulatedaddress000000000000", "amount": "100"})),
        ("class-not-allowed", raw("/sapi/v1/asset/transfer", {"type": "MAIN_UMFUTURE", "asset": "USDT", "amount": "10"})),
        ("max-order-notional", sdk_order(api, quantity=0.1)),
        ("symbol-not-allowed", sdk_order(api, symbol="ETHUSDT", price=3000.0, quantity=0.1)),
        ("price-band", sdk_order(api, price=30000.0)),
    ]
    for rule, call in cases:
        e = refused(gateway, sim, VENUE, rule, ForbiddenError, call)
        assert rule in str(e)
    assert balances(sim) == before


def test_sdk_kill_switch_refuses_new_orders(gateway, sim, bots):
    api = make_sdk(gateway, bots["sdk"])
    gateway.kill()
    try:
        refused(gateway, sim, VENUE, "kill-switch-halted", ForbiddenError, sdk_order(api, quantity=0.001))
    finally:
        gateway.resume()
    assert field(sdk_order(api, quantity=0.001)().data(), "status") == "FILLED"


def test_sdk_wrong_bot_secret_is_unauthorized(gateway, sim, bots):
    api = make_sdk(gateway, bots["sdk"], secret="x" * 64)
    seq = sim.last_seq()
    with pytest.raises(UnauthorizedError) as info:
        api.get_account()
    assert info.value.status_code == -1022
    assert signed(sim, VENUE, seq) == []
