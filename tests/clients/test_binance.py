"""Real clients against the simulated Binance: ccxt and the official binance-sdk-spot,
unchanged but for the base URL. Keys and accounts: sim.d/binance.toml.

Each client trades on its own account, so balances can be asserted exactly; every assertion on
a balance compares with a reading taken in the same test, so test order does not matter.
"""

import decimal
import json
import re

import ccxt
import pytest
from binance_common.configuration import ConfigurationRestAPI
from binance_common.errors import BadRequestError, ForbiddenError, UnauthorizedError
from binance_common.utils import send_request
from binance_sdk_spot.rest_api.models import (
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import Spot

VENUE = "binance"
D = decimal.Decimal

CCXT_KEY = ("binance-ccxt-key", "binance-ccxt-secret-0123456789abcdef0123456789abcdef")
SDK_KEY = ("binance-sdk-key", "binance-sdk-secret-0123456789abcdef0123456789abcdef")
IPBOUND_KEY = ("binance-ipbound-key", "binance-ipbound-secret-0123456789abcdef0123456789ab")
READONLY_KEY = ("binance-readonly-key", "binance-readonly-secret-0123456789abcdef0123456789a")
EXPIRED_KEY = ("binance-expired-key", "binance-expired-secret-0123456789abcdef0123456789ab")
WALLET_KEY = ("binance-wallet-key", "binance-wallet-secret-0123456789abcdef0123456789abc")
ED25519_KEY = "binance-ed25519-key"
# Test-only Ed25519 key; its public half is in sim.d/binance.toml.
ED25519_PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJVYtZxb7qsHs2uaAlBC5UUlTBvV/0Ojwo1dp++tAe18
-----END PRIVATE KEY-----
"""


# ---------------------------------------------------------------------------------------------
# helpers


def balances(sim, account):
    """{asset: (free, locked)} of a simulated account, as Decimals."""
    acct = sim.state(VENUE)["accounts"][account]
    return {a: (D(str(b["free"])), D(str(b["locked"]))) for a, b in acct["balances"].items()}


def logged(sim, since, method=None, path=None):
    out = []
    for r in sim.requests(VENUE, since=since):
        if method and r["method"] != method:
            continue
        if path and r["path"] != path:
            continue
        out.append(r)
    return out


def make_ccxt(sim, key=None, secret=None):
    ex = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "timeout": 5000,
            "enableRateLimit": False,
        }
    )
    base = sim.url(VENUE)
    ex.urls["api"] = {
        name: re.sub(r"^https://[^/]+", base, url) if isinstance(url, str) else url
        for name, url in ex.urls["api"].items()
    }
    return ex


def make_sdk(sim, key, secret=None, private_key=None):
    cfg = ConfigurationRestAPI(
        api_key=key,
        api_secret=secret,
        private_key=private_key,
        base_path=sim.url(VENUE),
        timeout=5000,
        retries=0,
    )
    return Spot(config_rest_api=cfg).rest_api


def field(obj, name):
    """Read a field from an SDK model or, when the SDK fell back to it, a raw dict."""
    if isinstance(obj, dict):
        return obj[name]
    return getattr(obj, name)


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_markets_ticker_and_permissions(sim):
    ex = make_ccxt(sim, *CCXT_KEY)
    seq = sim.last_seq()
    markets = ex.load_markets()
    assert markets["BTC/USDT"]["id"] == "BTCUSDT"
    assert markets["ETH/BTC"]["quote"] == "BTC"
    paths = {r["path"] for r in logged(sim, seq)}
    # spot, USD-M and COIN-M exchange info, and the signed currency list
    assert {"/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo",
            "/sapi/v1/capital/config/getall"} <= paths

    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["last"] == 60000

    perms = ex.sapi_get_account_apirestrictions()
    assert perms["enableReading"] is True
    assert perms["enableSpotAndMarginTrading"] is True
    assert perms["enableWithdrawals"] is False
    assert perms["ipRestrict"] is False
    assert perms["createTime"] == 1767323045000  # 2026-01-02T03:04:05Z
    assert perms["tradingAuthorityExpirationTime"] == 4070908800000  # 2099-01-01


def test_ccxt_trading_flow(sim):
    ex = make_ccxt(sim, *CCXT_KEY)
    ex.load_markets()
    before = balances(sim, "binance-ccxt")
    bal = ex.fetch_balance()
    assert D(str(bal["USDT"]["free"])) == before["USDT"][0]
    assert D(str(bal["BTC"]["total"])) == before["BTC"][0] + before["BTC"][1]

    seq = sim.last_seq()
    # A resting limit buy far below the market locks its quote.
    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)
    assert limit["status"] == "open"
    assert limit["filled"] == 0
    mid = balances(sim, "binance-ccxt")
    assert mid["USDT"][0] == before["USDT"][0] - D("300")
    assert mid["USDT"][1] == before["USDT"][1] + D("300")

    # A market buy fills at the reference price.
    market = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert market["status"] == "closed"
    assert market["filled"] == 0.01
    assert market["average"] == 60000
    assert market["cost"] == 600
    after_buy = balances(sim, "binance-ccxt")
    assert after_buy["BTC"][0] == before["BTC"][0] + D("0.01")
    assert after_buy["USDT"][0] == mid["USDT"][0] - D("600")

    open_orders = ex.fetch_open_orders("BTC/USDT")
    assert limit["id"] in [o["id"] for o in open_orders]
    assert market["id"] not in [o["id"] for o in open_orders]

    canceled = ex.cancel_order(limit["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    assert limit["id"] not in [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    after = balances(sim, "binance-ccxt")
    assert after["USDT"][1] == before["USDT"][1]
    assert after["USDT"][0] == before["USDT"][0] - D("600")

    fetched = ex.fetch_order(limit["id"], "BTC/USDT")
    assert fetched["status"] == "canceled"

    trades = ex.fetch_my_trades("BTC/USDT")
    mine = [t for t in trades if t["order"] == market["id"]]
    assert len(mine) == 1 and mine[0]["price"] == 60000 and mine[0]["amount"] == 0.01
    assert mine[0]["side"] == "buy"

    # What reached the exchange: signed, with the key header, parameters in the body.
    posts = logged(sim, seq, "POST", "/api/v3/order")
    assert len(posts) == 2 and all(r["status"] == 200 for r in posts)
    assert all(r["headers"]["x-mbx-apikey"] == CCXT_KEY[0] for r in posts)
    assert all(re.search(r"&signature=[0-9a-f]{64}$", r["body"]) for r in posts)
    deletes = logged(sim, seq, "DELETE", "/api/v3/order")
    assert len(deletes) == 1 and deletes[0]["status"] == 200


def test_ccxt_ed25519_key(sim):
    ex = make_ccxt(sim, ED25519_KEY, ED25519_PEM)
    ex.load_markets()
    before = balances(sim, "binance-ed")
    assert D(str(ex.fetch_balance()["USDT"]["free"])) == before["USDT"][0]
    seq = sim.last_seq()
    order = ex.create_order("BTC/USDT", "market", "sell", 0.005)
    assert order["status"] == "closed" and order["filled"] == 0.005
    after = balances(sim, "binance-ed")
    assert after["BTC"][0] == before["BTC"][0] - D("0.005")
    assert after["USDT"][0] == before["USDT"][0] + D("300")
    (post,) = logged(sim, seq, "POST", "/api/v3/order")
    assert re.search(r"&signature=[A-Za-z0-9%]+$", post["body"]) and "%3D" in post["body"]


def test_ccxt_wrong_secret_is_an_authentication_error(sim):
    ex = make_ccxt(sim, CCXT_KEY[0], "not-the-secret")
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert type(info.value) is ccxt.AuthenticationError
    assert "-1022" in str(info.value)
    refused = [r for r in logged(sim, seq) if r["status"] == 401]
    assert refused, "the simulator refused nothing"


def test_ccxt_ip_not_allowed_is_an_authentication_error(sim):
    ex = make_ccxt(sim, *IPBOUND_KEY)
    before = balances(sim, "binance-ccxt")
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.load_markets()
    assert type(info.value) is ccxt.AuthenticationError
    assert "-2015" in str(info.value)
    # The public market data loaded; the signed request did not get through.
    ex2 = make_ccxt(sim, *IPBOUND_KEY)
    ex2.options["fetchCurrencies"] = False
    ex2.options["fetchMargins"] = False
    ex2.load_markets()
    with pytest.raises(ccxt.AuthenticationError):
        ex2.create_order("BTC/USDT", "market", "buy", 0.01)
    assert balances(sim, "binance-ccxt") == before


def test_ccxt_expired_key_is_an_authentication_error(sim):
    ex = make_ccxt(sim, *EXPIRED_KEY)
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert "-2015" in str(info.value)


def test_ccxt_read_only_key_cannot_trade(sim):
    ex = make_ccxt(sim, *READONLY_KEY)
    ex.load_markets()
    assert ex.fetch_balance()["USDT"]["free"] > 0
    perms = ex.sapi_get_account_apirestrictions()
    assert perms["enableSpotAndMarginTrading"] is False
    before = balances(sim, "binance-ccxt")
    seq = sim.last_seq()
    with pytest.raises(ccxt.PermissionDenied) as info:
        ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert "has no operation privilege" in str(info.value)
    assert balances(sim, "binance-ccxt") == before
    assert [r["status"] for r in logged(sim, seq, "POST", "/api/v3/order")] == [403]


def test_ccxt_withdraw_and_transfer(sim):
    ex = make_ccxt(sim, *WALLET_KEY)
    ex.load_markets()
    before = balances(sim, "binance-wallet")
    w = ex.withdraw("USDT", 100, "TXYZsimulatedaddress000000000000", params={"network": "TRX"})
    assert w["id"]
    after = balances(sim, "binance-wallet")
    assert after["USDT"][0] == before["USDT"][0] - D("100")
    history = ex.fetch_withdrawals("USDT")
    assert w["id"] in [h["id"] for h in history]
    recorded = sim.state(VENUE)["accounts"]["binance-wallet"]["withdrawals"]
    assert any(r["address"] == "TXYZsimulatedaddress000000000000" for r in recorded)

    t = ex.transfer("USDT", 10, "spot", "linear")
    assert t["id"]
    transfers = sim.state(VENUE)["accounts"]["binance-wallet"]["transfers"]
    assert any(str(x["id"]) == str(t["id"]) and x["from"] == "MAIN" and x["to"] == "UMFUTURE"
               for x in transfers)

    # The trading key has no withdrawal permission.
    trader = make_ccxt(sim, *CCXT_KEY)
    trader.load_markets()
    with pytest.raises(ccxt.PermissionDenied):
        trader.withdraw("USDT", 1, "TXYZsimulatedaddress000000000000", params={"network": "TRX"})


# ---------------------------------------------------------------------------------------------
# binance-sdk-spot


def test_sdk_trading_flow(sim):
    api = make_sdk(sim, *SDK_KEY)
    server = field(api.time().data(), "server_time")
    assert server > 1_700_000_000_000
    info = api.exchange_info(symbol="BTCUSDT").data()
    assert [field(s, "symbol") for s in field(info, "symbols")] == ["BTCUSDT"]
    price = api.ticker_price(symbol="BTCUSDT").data()
    assert "60000" in json.dumps(price.to_dict() if hasattr(price, "to_dict") else price, default=str)

    before = balances(sim, "binance-sdk")
    account = api.get_account().data()
    assert field(account, "can_trade") is True
    got = {field(b, "asset"): D(field(b, "free")) for b in field(account, "balances")}
    assert got["USDT"] == before["USDT"][0]

    seq = sim.last_seq()
    limit = api.new_order(
        symbol="BTCUSDT",
        side=NewOrderSideEnum.BUY,
        type=NewOrderTypeEnum.LIMIT,
        time_in_force=NewOrderTimeInForceEnum.GTC,
        quantity=0.02,
        price=25000.0,
    ).data()
    assert field(limit, "status") == "NEW"
    market = api.new_order(
        symbol="BTCUSDT",
        side=NewOrderSideEnum.SELL,
        type=NewOrderTypeEnum.MARKET,
        quantity=0.5,
    ).data()
    assert field(market, "status") == "FILLED"
    assert D(field(market, "executed_qty")) == D("0.5")
    assert D(field(market, "cummulative_quote_qty")) == D("30000")
    fills = field(market, "fills")
    assert len(fills) == 1 and D(field(fills[0], "price")) == D("60000")

    mid = balances(sim, "binance-sdk")
    assert mid["BTC"][0] == before["BTC"][0] - D("0.5")
    assert mid["USDT"][0] == before["USDT"][0] - D("500") + D("30000")
    assert mid["USDT"][1] == before["USDT"][1] + D("500")

    opened = api.get_open_orders(symbol="BTCUSDT").data()
    assert field(limit, "order_id") in [field(o, "order_id") for o in opened]

    canceled = api.delete_order(symbol="BTCUSDT", order_id=field(limit, "order_id")).data()
    assert field(canceled, "status") == "CANCELED"
    assert field(limit, "order_id") not in [
        field(o, "order_id") for o in api.get_open_orders(symbol="BTCUSDT").data()
    ]
    after = balances(sim, "binance-sdk")
    assert after["USDT"] == (mid["USDT"][0] + D("500"), before["USDT"][1])

    trades = api.my_trades(symbol="BTCUSDT").data()
    mine = [t for t in trades if field(t, "order_id") == field(market, "order_id")]
    assert len(mine) == 1 and field(mine[0], "is_buyer") is False

    # The key's permissions as the spot SDK exposes them (the account's canTrade/canWithdraw;
    # apiRestrictions is in binance-sdk-wallet, and the SDK's generic send_signed_request is
    # broken in 13.3.0: it subscripts a function).
    assert field(account, "can_withdraw") is False

    posts = logged(sim, seq, "POST", "/api/v3/order")
    assert len(posts) == 2 and all(r["status"] == 200 for r in posts)
    # The SDK sends everything in the query string, signature last.
    assert all(re.search(r"&signature=[0-9a-f]{64}$", r["query"]) for r in posts)


def test_sdk_ed25519_key(sim):
    api = make_sdk(sim, ED25519_KEY, private_key=ED25519_PEM)
    before = balances(sim, "binance-ed")
    seq = sim.last_seq()
    order = api.new_order(
        symbol="BTCUSDT",
        side=NewOrderSideEnum.BUY,
        type=NewOrderTypeEnum.MARKET,
        quote_order_qty=600.0,
    ).data()
    assert field(order, "status") == "FILLED"
    assert D(field(order, "executed_qty")) == D("0.01")
    after = balances(sim, "binance-ed")
    assert after["BTC"][0] == before["BTC"][0] + D("0.01")
    assert after["USDT"][0] == before["USDT"][0] - D("600")
    (post,) = logged(sim, seq, "POST", "/api/v3/order")
    # base64, percent-encoded
    assert re.search(r"&signature=[A-Za-z0-9%]+$", post["query"]) and "%3D" in post["query"]


def test_sdk_wrong_secret_is_unauthorized(sim):
    api = make_sdk(sim, SDK_KEY[0], "not-the-secret")
    with pytest.raises(UnauthorizedError) as info:
        api.get_account()
    assert info.value.status_code == -1022


def test_sdk_wrong_ed25519_key_is_unauthorized(sim):
    other = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u
-----END PRIVATE KEY-----
"""
    api = make_sdk(sim, ED25519_KEY, private_key=other)
    with pytest.raises(UnauthorizedError) as info:
        api.get_account()
    assert info.value.status_code == -1022


def test_sdk_ip_not_allowed_is_unauthorized(sim):
    api = make_sdk(sim, *IPBOUND_KEY)
    before = balances(sim, "binance-ccxt")
    with pytest.raises(UnauthorizedError) as info:
        api.new_order(
            symbol="BTCUSDT", side=NewOrderSideEnum.BUY, type=NewOrderTypeEnum.MARKET, quantity=0.01
        )
    assert info.value.status_code == -2015
    assert balances(sim, "binance-ccxt") == before


def test_sdk_read_only_key_is_forbidden_to_trade(sim):
    api = make_sdk(sim, *READONLY_KEY)
    assert field(api.get_account().data(), "can_trade") is False
    with pytest.raises(ForbiddenError) as info:
        api.new_order(
            symbol="BTCUSDT", side=NewOrderSideEnum.BUY, type=NewOrderTypeEnum.MARKET, quantity=0.01
        )
    assert info.value.status_code == -1002


# ---------------------------------------------------------------------------------------------
# malformed requests get Binance's own error shape


def test_malformed_requests_get_native_errors(sim):
    api = make_sdk(sim, *SDK_KEY)
    cases = [
        ("/api/v3/order", "POST", {"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1121),
        ("/api/v3/order", "POST", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, -1102),
        ("/api/v3/order", "POST", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", "bogus": "1"}, -1104),
        ("/api/v3/order", "POST", {"symbol": "BTCUSDT", "side": "UP", "type": "MARKET", "quantity": "1"}, -1117),
        ("/api/v3/order", "POST", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "99999"}, -2010),
        ("/api/v3/order", "DELETE", {"symbol": "BTCUSDT", "orderId": "424242"}, -2011),
        ("/api/v3/order", "GET", {"symbol": "BTCUSDT", "orderId": "424242"}, -2013),
    ]
    for path, method, params, code in cases:
        # The SDK's own transport, as its generated methods call it.
        with pytest.raises(BadRequestError) as info:
            send_request(api._session, api.configuration, method, path, payload=params, is_signed=True)
        assert info.value.status_code == code, (path, params)
    ex = make_ccxt(sim)
    with pytest.raises(ccxt.BadRequest):
        ex.public_get_ticker_price({"symbols": "[not json"})
