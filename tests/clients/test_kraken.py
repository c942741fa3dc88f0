"""Real clients against the simulated Kraken: ccxt and python-kraken-sdk, unchanged but for the
base URL (and, for the SDK, a shorter per-request timeout).

Keys and accounts: `sim.d/kraken.toml`. ccxt and the SDK each trade on their own account and
key (their nonces are in different units, and balance checks must not see the other client's
orders). Every test reads balances before and after, so test order does not matter.
"""

import functools
import json
from decimal import Decimal

import ccxt
import pytest
from kraken.exceptions import (
    KrakenInsufficientFundsError,
    KrakenInvalidAPIKeyError,
    KrakenInvalidArgumentsError,
    KrakenPermissionDeniedError,
    KrakenUnknownAssetError,
    KrakenUnknownOrderError,
)
from kraken.spot import Funding, Market, Trade, User

VENUE = "kraken"
TIMEOUT_S = 5

CCXT_KEY = "kraken-ccxt-key"
CCXT_SECRET = "xhxwOet6rTULHFUM3yrNMzm/lKHV7l0PJ8EkGOENI8aaV+Fc2APU0N8cBJLcfR3UPrx7F1tJHkBDsaH1RDIg0g=="
SDK_KEY = "kraken-sdk-key"
SDK_SECRET = "ewQz4eSc4sQMDhcnnpJ1O2uulekLcLzTehy25+B7oFN6gtV6A07MP9C+I2oDTjvIkyl1J9wXNbFDQv2TWP3a8Q=="
IPBLOCK_KEY = "kraken-ipblock-key"
IPBLOCK_SECRET = "YrAe+8s2LOIQyOPdERaHDJeRiyTT1mMmngK6VbSK9rRNyo6zMUKQkN6JsDpICP+uxK9CtoZFlIbP1dMc8tvdVA=="
READONLY_KEY = "kraken-readonly-key"
READONLY_SECRET = "LZuI8sruj29jLECjHvvYzpR7bbIy01Ib1HxqLg8oXcbDZ7Sq13YDeo6TZPtOD8aH7gvIQPTr1iBeMbOzelf86g=="
FUND_SDK_KEY = "kraken-funding-sdk-key"
FUND_SDK_SECRET = "xzbumaef0DWDDL8I+pR0+lAjSrkaJ5D4trCi15FOqsCoJXrs4QH/iD96UNxYyAdxj1xSLlI2cImrM/igTjSFCw=="
FUND_CCXT_KEY = "kraken-funding-ccxt-key"
FUND_CCXT_SECRET = "iGX54MlnmpMM7z/3U8qnoyHRhjxJa1s4bcBqFXfHnE10vPiykxd9kH/UHbyUbEp6rUXkhHeuxPCWOVxuBFLc7w=="
EXPIRED_KEY = "kraken-expired-key"
EXPIRED_SECRET = "54CPvXNpZY8lJDP4t/OQaZKENQaP9keoBuYMvcgoB6ItbN7/2WZ7inevU7+qUfxvKceLR3zvFtoI/C44aU43Bw=="
# A valid base64 secret that is nobody's.
WRONG_SECRET = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXQtMDAwMDA="

TRADING_PERMISSIONS = [
    "close-trades",
    "modify-trades",
    "query-closed-trades",
    "query-funds",
    "query-open-trades",
]


# ---------------------------------------------------------------------------------------------
# helpers


def ccxt_client(sim, key=CCXT_KEY, secret=CCXT_SECRET):
    ex = ccxt.kraken({"apiKey": key, "secret": secret, "timeout": TIMEOUT_S * 1000, "enableRateLimit": False})
    ex.urls["api"]["public"] = sim.url(VENUE)
    ex.urls["api"]["private"] = sim.url(VENUE)
    return ex


def sdk(cls, sim, key="", secret=""):
    """A python-kraken-sdk client on the simulator, with every request bounded to a few seconds
    (the SDK's own `TIMEOUT` only applies when a caller passes a non-default timeout)."""
    client = cls(key=key, secret=secret, url=sim.url(VENUE))
    session = client._SpotClient__session
    original = session.request

    @functools.wraps(original)
    def bounded(*args, **kwargs):
        kwargs["timeout"] = TIMEOUT_S
        return original(*args, **kwargs)

    session.request = bounded
    return client


def account(sim, name):
    return sim.state(VENUE)["accounts"][name]


def balance(sim, name, asset):
    b = account(sim, name)["balances"].get(asset, {"free": "0", "locked": "0"})
    return Decimal(b["free"]), Decimal(b["locked"])


def private_requests(sim, since, method_name):
    return [
        r
        for r in sim.requests(VENUE, since=since)
        if r["path"] == f"/0/private/{method_name}"
    ]


def only_request(sim, since, method_name):
    """The one logged request to `method_name` since `since`."""
    reqs = private_requests(sim, since, method_name)
    assert len(reqs) == 1, reqs
    return reqs[0]


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_loads_markets_and_ticker(sim):
    ex = ccxt_client(sim)
    markets = ex.load_markets()
    assert "BTC/USD" in markets
    m = markets["BTC/USD"]
    assert m["id"] == "XXBTZUSD"
    assert m["altname"] == "XBTUSD"
    assert m["baseId"] == "BTC" and m["quoteId"] == "USD"
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["id"] == "XBTUSDT"
    assert "ETH/USD" in markets
    t = ex.fetch_ticker("BTC/USD")
    assert t["last"] == 60000.0
    assert t["bid"] == 60000.0 and t["ask"] == 60000.0


def test_ccxt_trades_end_to_end(sim):
    ex = ccxt_client(sim)
    ex.load_markets()
    seq = sim.last_seq()

    before = ex.fetch_balance()
    usd0, btc0 = before["USD"]["total"], before["BTC"]["total"]
    usd_used0 = before["USD"]["used"]
    assert usd0 > 1000 and btc0 > 0
    free0, locked0 = balance(sim, "kraken-ccxt", "ZUSD")

    # A resting limit buy, far below the market, locks its cost.
    limit = ex.create_order("BTC/USD", "limit", "buy", 0.01, 30000)
    assert limit["id"] and limit["id"].startswith("O")
    assert limit["side"] == "buy" and limit["type"] == "limit" and limit["price"] == 30000.0
    free1, locked1 = balance(sim, "kraken-ccxt", "ZUSD")
    assert locked1 - locked0 == Decimal("300")
    assert free0 - free1 == Decimal("300")
    opened = ex.fetch_open_orders("BTC/USD")
    mine = [o for o in opened if o["id"] == limit["id"]]
    assert len(mine) == 1 and mine[0]["status"] == "open" and mine[0]["amount"] == 0.01
    assert ex.fetch_balance()["USD"]["used"] == pytest.approx(usd_used0 + 300)

    # A market buy fills at once at the reference price.
    market = ex.create_order("BTC/USD", "market", "buy", 0.01)
    fetched = ex.fetch_order(market["id"])
    assert fetched["status"] == "closed"
    assert fetched["filled"] == 0.01 and fetched["average"] == 60000.0
    after = ex.fetch_balance()
    assert after["BTC"]["total"] == pytest.approx(btc0 + 0.01)
    assert after["USD"]["total"] == pytest.approx(usd0 - 600)

    # Cancel the limit: it leaves the open list and its funds are released.
    ex.cancel_order(limit["id"])
    assert limit["id"] not in [o["id"] for o in ex.fetch_open_orders()]
    assert balance(sim, "kraken-ccxt", "ZUSD")[1] == locked0
    assert ex.fetch_order(limit["id"])["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(limit["id"])

    trades = ex.fetch_my_trades("BTC/USD")
    fills = [t for t in trades if t["order"] == market["id"]]
    assert len(fills) == 1
    assert fills[0]["amount"] == 0.01 and fills[0]["price"] == 60000.0
    assert fills[0]["side"] == "buy" and fills[0]["symbol"] == "BTC/USD"

    # What reached the exchange: signed form bodies, nonce first, ccxt's own request shape.
    adds = private_requests(sim, seq, "AddOrder")
    assert len(adds) == 2 and all(r["status"] == 200 for r in adds)
    assert adds[0]["headers"]["api-key"] == CCXT_KEY and adds[0]["headers"]["api-sign"]
    assert adds[0]["body"].startswith("nonce=") and "ordertype=limit" in adds[0]["body"]
    assert "ordertype=market" in adds[1]["body"]
    assert len(private_requests(sim, seq, "CancelOrder")) == 2


def test_ccxt_batch_and_closed_orders(sim):
    ex = ccxt_client(sim)
    ex.load_markets()
    seq = sim.last_seq()
    placed = ex.create_orders(
        [
            {"symbol": "BTC/USD", "type": "limit", "side": "buy", "amount": 0.01, "price": 20000},
            {"symbol": "BTC/USD", "type": "limit", "side": "sell", "amount": 0.01, "price": 90000},
        ]
    )
    ids = [o["id"] for o in placed]
    assert len(ids) == 2 and all(i.startswith("O") for i in ids)
    (batch,) = private_requests(sim, seq, "AddOrderBatch")
    body = json.loads(batch["body"])
    assert body["pair"] == "XXBTZUSD" and len(body["orders"]) == 2
    open_ids = {o["id"]: o for o in ex.fetch_open_orders("BTC/USD")}
    assert open_ids[ids[0]]["side"] == "buy" and open_ids[ids[1]]["side"] == "sell"
    for i in ids:
        ex.cancel_order(i)
    closed = {o["id"]: o for o in ex.fetch_closed_orders("BTC/USD")}
    assert all(closed[i]["status"] == "canceled" for i in ids)


def test_ccxt_reads_key_permissions(sim):
    ex = ccxt_client(sim)
    info = ex.privatePostGetApiKeyInfo()
    assert info["error"] == []
    r = info["result"]
    assert r["apiKey"] == CCXT_KEY
    assert r["apiKeyName"] == "kraken ccxt trading bot"
    assert sorted(r["permissions"]) == TRADING_PERMISSIONS
    assert r["ipAllowlist"] == []
    assert r["validUntil"] == "0"
    assert int(r["createdTime"]) == 1768435200  # 2026-01-15


def test_ccxt_wrong_secret_is_an_authentication_error(sim):
    ex = ccxt_client(sim, CCXT_KEY, WRONG_SECRET)
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as e:
        ex.fetch_balance()
    assert type(e.value) is ccxt.AuthenticationError
    assert "EAPI:Invalid key" in str(e.value)
    logged = only_request(sim, seq, "BalanceEx")
    assert logged["headers"]["api-key"] == CCXT_KEY


def test_ccxt_ip_restricted_key_is_refused(sim):
    ex = ccxt_client(sim, IPBLOCK_KEY, IPBLOCK_SECRET)
    before = account(sim, "kraken-ccxt")["orders"]
    with pytest.raises(ccxt.PermissionDenied):
        ex.fetch_balance()
    with pytest.raises(ccxt.PermissionDenied):
        ex.create_order("BTC/USD", "market", "buy", 0.01)
    assert account(sim, "kraken-ccxt")["orders"] == before


def test_ccxt_expired_and_read_only_keys(sim):
    with pytest.raises(ccxt.AuthenticationError):
        ccxt_client(sim, EXPIRED_KEY, EXPIRED_SECRET).fetch_balance()
    ro = ccxt_client(sim, READONLY_KEY, READONLY_SECRET)
    assert ro.fetch_balance()["USD"]["total"] > 0
    orders_before = len(account(sim, "kraken-ccxt")["orders"])
    with pytest.raises(ccxt.PermissionDenied):
        ro.create_order("BTC/USD", "limit", "buy", 0.01, 30000)
    with pytest.raises(ccxt.PermissionDenied):
        ro.fetch_open_orders()
    assert len(account(sim, "kraken-ccxt")["orders"]) == orders_before


def test_ccxt_insufficient_funds(sim):
    ex = ccxt_client(sim)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USD", "market", "buy", 1000)


def test_ccxt_withdraw_moves_funds_out(sim):
    ex = ccxt_client(sim, FUND_CCXT_KEY, FUND_CCXT_SECRET)
    ex.load_markets()
    free0, _ = balance(sim, "kraken-funding", "XXBT")
    ex.withdraw("BTC", 0.05, None, {"key": "ccxt-cold-wallet"})
    free1, _ = balance(sim, "kraken-funding", "XXBT")
    assert free0 - free1 == Decimal("0.05")
    ws = [w for w in account(sim, "kraken-funding")["withdrawals"] if w["network"] == "ccxt-cold-wallet"]
    assert len(ws) == 1 and Decimal(ws[0]["amount"]) == Decimal("0.05") and ws[0]["asset"] == "XXBT"
    listed = ex.fetch_withdrawals("BTC")
    assert any(w["amount"] == 0.05 for w in listed)
    # A trading key cannot withdraw.
    with pytest.raises(ccxt.PermissionDenied):
        ccxt_client(sim).withdraw("BTC", 0.01, None, {"key": "x"})


def test_ccxt_sees_kraken_nonce_rules(sim):
    # The SDK's nonces (1e-8 s) are far above ccxt's (ms): after the SDK used the key, ccxt's
    # nonce is "not larger than the last one", as on Kraken.
    sdk(User, sim, SDK_KEY, SDK_SECRET).get_balances()
    seq = sim.last_seq()
    with pytest.raises(ccxt.InvalidNonce):
        ccxt_client(sim, SDK_KEY, SDK_SECRET).fetch_balance()
    assert only_request(sim, seq, "BalanceEx")["status"] == 200
    # The refused nonce was not recorded: the SDK goes on working.
    assert sdk(User, sim, SDK_KEY, SDK_SECRET).get_balances()["ZUSD"]["balance"]


def test_ccxt_rate_limit_fault(sim):
    ex = ccxt_client(sim)
    ex.load_markets()
    sim.faults(VENUE, rate_limits=1, retry_after_s=2)
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_ticker("BTC/USD")
    assert ex.fetch_ticker("BTC/USD")["last"] == 60000.0


# ---------------------------------------------------------------------------------------------
# python-kraken-sdk


def test_sdk_market_data(sim):
    market = sdk(Market, sim)
    pairs = market.get_asset_pairs(pair="XBTUSD")
    assert list(pairs) == ["XXBTZUSD"]
    p = pairs["XXBTZUSD"]
    assert p["altname"] == "XBTUSD" and p["wsname"] == "XBT/USD"
    assert p["base"] == "XXBT" and p["quote"] == "ZUSD"
    ticker = market.get_ticker(pair="XBTUSD")
    assert Decimal(ticker["XXBTZUSD"]["c"][0]) == Decimal("60000")
    assets = market.get_assets(assets=["XBT", "USD"])
    assert set(assets) == {"XXBT", "ZUSD"}
    assert market.get_system_status()["status"] == "online"
    # "EQuery:Unknown asset pair": the SDK matches error names by substring, in table order, so
    # "EQuery:Unknown asset" wins and it raises KrakenUnknownAssetError.
    with pytest.raises(KrakenUnknownAssetError):
        market.get_ticker(pair="DOGEUSD")


def test_sdk_trades_end_to_end(sim):
    user = sdk(User, sim, SDK_KEY, SDK_SECRET)
    trade = sdk(Trade, sim, SDK_KEY, SDK_SECRET)
    seq = sim.last_seq()

    b0 = user.get_balances()
    usd0, btc0 = Decimal(b0["ZUSD"]["balance"]), Decimal(b0["XXBT"]["balance"])
    hold0 = Decimal(b0["ZUSD"]["hold_trade"])

    placed = trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="0.02", price="25000")
    (limit_id,) = placed["txid"]
    assert placed["descr"]["order"] == "buy 0.02000000 XBTUSD @ limit 25000"
    b1 = user.get_balances()
    assert Decimal(b1["ZUSD"]["hold_trade"]) - hold0 == Decimal("500")
    assert Decimal(b1["ZUSD"]["balance"]) == usd0
    assert user.get_balance("USD")["available_balance"] == float(usd0 - hold0 - 500)
    opened = user.get_open_orders()["open"]
    assert opened[limit_id]["status"] == "open"
    assert opened[limit_id]["descr"]["pair"] == "XBTUSD"
    assert Decimal(opened[limit_id]["vol"]) == Decimal("0.02")

    bought = trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.01")
    (market_id,) = bought["txid"]
    info = user.get_orders_info(txid=[market_id, limit_id], trades=True)
    assert info[market_id]["status"] == "closed"
    assert Decimal(info[market_id]["vol_exec"]) == Decimal("0.01")
    assert Decimal(info[market_id]["price"]) == Decimal("60000")
    assert info[limit_id]["status"] == "open"
    b2 = user.get_balances()
    assert Decimal(b2["XXBT"]["balance"]) - btc0 == Decimal("0.01")
    assert usd0 - Decimal(b2["ZUSD"]["balance"]) == Decimal("600")

    assert trade.cancel_order(txid=limit_id) == {"count": 1}
    assert limit_id not in user.get_open_orders()["open"]
    closed = user.get_closed_orders()["closed"]
    assert closed[limit_id]["status"] == "canceled"
    assert closed[market_id]["status"] == "closed"
    assert Decimal(user.get_balances()["ZUSD"]["hold_trade"]) == hold0
    with pytest.raises(KrakenUnknownOrderError):
        trade.cancel_order(txid=limit_id)

    history = user.get_trades_history()["trades"]
    fills = [t for t in history.values() if t["ordertxid"] == market_id]
    assert len(fills) == 1
    assert fills[0]["pair"] == "XXBTZUSD" and fills[0]["type"] == "buy"
    assert Decimal(fills[0]["vol"]) == Decimal("0.01") and Decimal(fills[0]["price"]) == Decimal("60000")

    adds = private_requests(sim, seq, "AddOrder")
    assert len(adds) == 2
    assert all(r["headers"]["api-key"] == SDK_KEY for r in adds)
    assert "ordertype=limit" in adds[0]["body"] and "price=25000" in adds[0]["body"]
    # The SDK's nonce is in units of 1e-8 s, far above ccxt's milliseconds.
    nonce = int(dict(kv.split("=") for kv in adds[0]["body"].split("&"))["nonce"])
    assert nonce > 10**16


def test_sdk_batch_orders(sim):
    trade = sdk(Trade, sim, SDK_KEY, SDK_SECRET)
    user = sdk(User, sim, SDK_KEY, SDK_SECRET)
    seq = sim.last_seq()
    res = trade.create_order_batch(
        orders=[
            {"ordertype": "limit", "type": "buy", "volume": "0.01", "price": "20000"},
            {"ordertype": "limit", "type": "sell", "volume": "0.01", "price": "90000"},
        ],
        pair="XBTUSD",
    )
    ids = [o["txid"] for o in res["orders"]]
    assert len(ids) == 2
    opened = user.get_open_orders()["open"]
    assert opened[ids[0]]["descr"]["type"] == "buy" and opened[ids[1]]["descr"]["type"] == "sell"
    (batch,) = private_requests(sim, seq, "AddOrderBatch")
    assert batch["headers"]["content-type"].startswith("application/json")
    assert len(json.loads(batch["body"])["orders"]) == 2
    for i in ids:
        assert trade.cancel_order(txid=i) == {"count": 1}


def test_sdk_reads_key_permissions(sim):
    # python-kraken-sdk 3.1.0 has no GetApiKeyInfo method; its generic signed request is used.
    user = sdk(User, sim, SDK_KEY, SDK_SECRET)
    info = user.request(method="POST", uri="/0/private/GetApiKeyInfo")
    assert info["apiKey"] == SDK_KEY
    assert sorted(info["permissions"]) == TRADING_PERMISSIONS
    assert info["ipAllowlist"] == ["127.0.0.1", "::1"]
    assert int(info["validUntil"]) == 1893456000  # 2030-01-01
    assert info["apiKeyName"] == "kraken sdk trading bot"


def test_sdk_wrong_secret_is_an_invalid_key_error(sim):
    seq = sim.last_seq()
    with pytest.raises(KrakenInvalidAPIKeyError):
        sdk(User, sim, SDK_KEY, WRONG_SECRET).get_balances()
    logged = only_request(sim, seq, "BalanceEx")
    assert logged["status"] == 200


def test_sdk_ip_restricted_and_read_only_keys_are_refused(sim):
    orders_before = len(account(sim, "kraken-ccxt")["orders"])
    with pytest.raises(KrakenPermissionDeniedError):
        sdk(User, sim, IPBLOCK_KEY, IPBLOCK_SECRET).get_balances()
    with pytest.raises(KrakenPermissionDeniedError):
        sdk(Trade, sim, IPBLOCK_KEY, IPBLOCK_SECRET).create_order(
            ordertype="market", side="buy", pair="XBTUSD", volume="0.01"
        )
    assert sdk(User, sim, READONLY_KEY, READONLY_SECRET).get_balances()["ZUSD"]["balance"]
    with pytest.raises(KrakenPermissionDeniedError):
        sdk(Trade, sim, READONLY_KEY, READONLY_SECRET).create_order(
            ordertype="limit", side="buy", pair="XBTUSD", volume="0.01", price="30000"
        )
    assert len(account(sim, "kraken-ccxt")["orders"]) == orders_before


def test_sdk_bad_requests_get_kraken_errors(sim):
    trade = sdk(Trade, sim, SDK_KEY, SDK_SECRET)
    with pytest.raises(KrakenUnknownAssetError):
        trade.create_order(ordertype="market", side="buy", pair="DOGEUSD", volume="1")
    with pytest.raises(KrakenInsufficientFundsError):
        trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="500")
    with pytest.raises(KrakenInvalidArgumentsError):
        trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.01", extra_params={"bogus": "1"})
    with pytest.raises(KrakenInvalidArgumentsError):
        trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="-1", price="100")


def test_sdk_withdraw_and_transfer(sim):
    funding = sdk(Funding, sim, FUND_SDK_KEY, FUND_SDK_SECRET)
    user = sdk(User, sim, FUND_SDK_KEY, FUND_SDK_SECRET)
    btc0 = Decimal(user.get_balances()["XXBT"]["balance"])
    res = funding.withdraw_funds(asset="XBT", key="sdk-cold-wallet", amount="0.1")
    assert res["refid"]
    assert btc0 - Decimal(user.get_balances()["XXBT"]["balance"]) == Decimal("0.1")
    status = funding.get_recent_withdraw_status(asset="XBT")
    mine = [w for w in status if w["refid"] == res["refid"]]
    assert len(mine) == 1 and Decimal(mine[0]["amount"]) == Decimal("0.1") and mine[0]["status"] == "Success"
    recorded = [w for w in account(sim, "kraken-funding")["withdrawals"] if w["network"] == "sdk-cold-wallet"]
    assert len(recorded) == 1 and recorded[0]["asset"] == "XXBT"

    t = funding.wallet_transfer(asset="ZUSD", from_="Spot Wallet", to_="Futures Wallet", amount="100")
    assert t["refid"]
    transfers = account(sim, "kraken-funding")["transfers"]
    assert any(x["asset"] == "ZUSD" and Decimal(x["amount"]) == Decimal("100") for x in transfers)
    # Trading keys have no funding permissions.
    with pytest.raises(KrakenPermissionDeniedError):
        sdk(Funding, sim, SDK_KEY, SDK_SECRET).withdraw_funds(asset="XBT", key="x", amount="0.01")
