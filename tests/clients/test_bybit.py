"""Real clients against the simulated Bybit v5: ccxt and pybit, unchanged but for the base URL.

Keys and accounts are in sim.d/bybit.toml. ccxt trades on account `bybit-ccxt`, pybit on
`bybit-pybit`; every balance check is relative, so the tests pass in any order.
"""

from decimal import Decimal

import ccxt
import pytest
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

VENUE = "bybit"
CCXT_KEY, CCXT_SECRET = "bybit-ccxt-key", "bybit-ccxt-secret-0123456789abcdef"
PYBIT_KEY, PYBIT_SECRET = "bybit-pybit-key", "bybit-pybit-secret-0123456789abcdef"
IP_KEY, IP_SECRET = "bybit-ipbound-key", "bybit-ipbound-secret-0123456789abcdef"
RO_KEY, RO_SECRET = "bybit-readonly-key", "bybit-readonly-secret-0123456789abcdef"
WD_KEY, WD_SECRET = "bybit-withdraw-key", "bybit-withdraw-secret-0123456789abcdef"
EXPIRED_KEY, EXPIRED_SECRET = "bybit-expired-key", "bybit-expired-secret-0123456789abcdef"
PRICE = Decimal("60000")


def ccxt_client(sim, key, secret):
    ex = ccxt.bybit({"apiKey": key, "secret": secret, "timeout": 5000, "enableRateLimit": False})
    for k in list(ex.urls["api"].keys()):
        ex.urls["api"][k] = sim.url(VENUE)
    return ex


def pybit_client(sim, key, secret):
    s = HTTP(api_key=key, api_secret=secret, timeout=5, max_retries=1, retry_delay=0)
    s.endpoint = sim.url(VENUE)
    return s


def account(sim, name):
    return sim.state(VENUE)["accounts"][name]


def ledger_order(sim, account_name, order_id):
    orders = [o for o in account(sim, account_name)["orders"] if str(o["id"]) == str(order_id)]
    assert len(orders) == 1, orders
    return orders[0]


def dec(x):
    return Decimal(str(x))


def logged(sim, since, path):
    return [r for r in sim.requests(VENUE, since=since) if r["path"] == path]


@pytest.fixture(autouse=True)
def _bybit_price(sim):
    # Every test starts from the configured reference price and no injected faults.
    sim.set_price(VENUE, "BTCUSDT", PRICE)
    yield
    sim.faults(VENUE)  # all counts zero: this venue only


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_loads_markets_and_ticker(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    markets = ex.load_markets()
    assert markets["BTC/USDT"]["spot"] is True
    assert markets["BTC/USDT"]["id"] == "BTCUSDT"
    assert set(m for m in markets if markets[m]["spot"]) == {"BTC/USDT", "ETH/USDT"}
    assert dec(ex.fetch_ticker("BTC/USDT")["last"]) == PRICE
    assert "BTC" in ex.currencies and "USDT" in ex.currencies


def test_ccxt_trading_flow(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    seq = sim.last_seq()
    before = ex.fetch_balance()
    usdt0, btc0 = dec(before["USDT"]["total"]), dec(before["BTC"]["total"])

    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)
    market = ex.create_order("BTC/USDT", "market", "buy", 0.01)

    open_ids = [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    assert limit["id"] in open_ids
    assert market["id"] not in open_ids
    mid = ex.fetch_balance()
    assert dec(mid["USDT"]["used"]) >= Decimal("300")  # 0.01 @ 30000 locked by the resting order

    canceled = ex.cancel_order(limit["id"], "BTC/USDT")
    assert canceled["id"] == limit["id"]
    assert limit["id"] not in [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]

    trades = ex.fetch_my_trades("BTC/USDT")
    mine = [t for t in trades if t["order"] == market["id"]]
    assert len(mine) == 1
    assert dec(mine[0]["amount"]) == Decimal("0.01")
    assert dec(mine[0]["price"]) == PRICE
    assert mine[0]["side"] == "buy"

    after = ex.fetch_balance()
    assert dec(after["BTC"]["total"]) == btc0 + Decimal("0.01")
    assert dec(after["USDT"]["total"]) == usdt0 - Decimal("600")
    assert dec(after["USDT"]["used"]) == dec(before["USDT"]["used"])

    assert ledger_order(sim, "bybit-ccxt", limit["id"])["status"] == "canceled"
    filled = ledger_order(sim, "bybit-ccxt", market["id"])
    assert filled["status"] == "filled" and dec(filled["filled"]) == Decimal("0.01")

    creates = logged(sim, seq, "/v5/order/create")
    assert len(creates) == 2 and all(r["status"] == 200 for r in creates)
    assert all(r["headers"]["x-bapi-api-key"] == CCXT_KEY for r in creates)
    assert '"marketUnit":"baseCoin"' in creates[1]["body"]
    assert len(logged(sim, seq, "/v5/order/cancel")) == 1


def test_ccxt_reads_key_permissions(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    info = ex.privateGetV5UserQueryApi()
    r = info["result"]
    assert r["apiKey"] == CCXT_KEY
    assert r["permissions"]["Spot"] == ["SpotTrade"]
    assert r["permissions"]["ContractTrade"] == ["Order", "Position"]
    assert r["permissions"]["Wallet"] == ["AccountTransfer"]
    assert r["ips"] == ["*"] and r["readOnly"] == 0 and r["isMaster"] is True
    assert r["note"] == "ccxt bot" and r["createdAt"] == "2026-01-01T00:00:00Z"
    assert ex.is_unified_enabled() == [False, True]


def test_ccxt_wrong_secret_is_an_authentication_error(sim):
    ex = ccxt_client(sim, CCXT_KEY, "not-the-secret")
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as err:
        ex.fetch_balance()
    assert type(err.value) is ccxt.AuthenticationError
    assert '"retCode":10004' in str(err.value)
    reqs = [r for r in sim.requests(VENUE, since=seq) if r["headers"].get("x-bapi-api-key") == CCXT_KEY]
    assert reqs, "the signed request reached the simulator"
    assert all(r["path"] != "/v5/account/wallet-balance" for r in reqs)


def test_ccxt_ip_bound_key_is_a_permission_error(sim):
    ex = ccxt_client(sim, IP_KEY, IP_SECRET)
    with pytest.raises(ccxt.PermissionDenied) as err:
        ex.fetch_balance()
    assert type(err.value) is ccxt.PermissionDenied
    assert '"retCode":10010' in str(err.value)


def test_ccxt_read_only_and_expired_keys(sim):
    ro = ccxt_client(sim, RO_KEY, RO_SECRET)
    orders_before = len(account(sim, "bybit-other")["orders"])
    assert dec(ro.fetch_balance()["USDT"]["total"]) > 0
    with pytest.raises(ccxt.PermissionDenied) as err:
        ro.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)
    assert '"retCode":10005' in str(err.value)
    assert len(account(sim, "bybit-other")["orders"]) == orders_before
    assert ro.privateGetV5UserQueryApi()["result"]["readOnly"] == 1

    expired = ccxt_client(sim, EXPIRED_KEY, EXPIRED_SECRET)
    with pytest.raises(ccxt.AuthenticationError) as err:
        expired.fetch_balance()
    assert '"retCode":33004' in str(err.value)


def test_ccxt_bad_orders_get_bybit_errors(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    ex.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 100, 30000)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("999999", "BTC/USDT")
    with pytest.raises(ccxt.BadSymbol):
        ex.privatePostV5OrderCreate(
            {"category": "spot", "symbol": "NOPEUSDT", "side": "Buy", "orderType": "Market", "qty": "1"}
        )
    with pytest.raises(ccxt.BadRequest):
        ex.privatePostV5OrderCreate({"category": "spot", "symbol": "BTCUSDT", "side": "Buy"})


def test_ccxt_rate_limit_fault(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    ex.load_markets()
    sim.faults(VENUE, rate_limits=1, retry_after_s=1)
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.fetch_ticker("BTC/USDT")
    assert dec(ex.fetch_ticker("BTC/USDT")["last"]) == PRICE


def test_ccxt_transfer_is_recorded(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    before = len(account(sim, "bybit-ccxt")["transfers"])
    t = ex.transfer("USDT", 25, "unified", "funding")
    assert t["status"] == "ok"
    transfers = account(sim, "bybit-ccxt")["transfers"]
    assert len(transfers) == before + 1
    assert transfers[-1]["from"] == "UNIFIED" and transfers[-1]["to"] == "FUND"
    assert dec(transfers[-1]["amount"]) == Decimal("25")
    # This key has no Wallet.Withdraw.
    with pytest.raises(ccxt.PermissionDenied):
        ex.withdraw("USDT", 10, "0x000000000000000000000000000000000000dEaD")


# ---------------------------------------------------------------------------------------------
# pybit


def pybit_balances(s):
    coins = s.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]["coin"]
    return {c["coin"]: c for c in coins}


def test_pybit_trading_flow(sim):
    s = pybit_client(sim, PYBIT_KEY, PYBIT_SECRET)
    seq = sim.last_seq()
    assert abs(int(s.get_server_time()["result"]["timeSecond"]) * 1000 - sim.requests(VENUE)[-1]["time_ms"]) < 5000
    b0 = pybit_balances(s)

    limit = s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01", price="30000")
    limit_id = limit["result"]["orderId"]
    # A spot market buy without marketUnit is sized in quote: 600 USDT buys 0.01 BTC at 60000.
    market = s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="600")
    market_id = market["result"]["orderId"]

    open_orders = s.get_open_orders(category="spot", symbol="BTCUSDT")["result"]["list"]
    assert [o["orderId"] for o in open_orders] == [limit_id]
    assert open_orders[0]["orderStatus"] == "New" and open_orders[0]["price"] == "30000"
    assert dec(pybit_balances(s)["USDT"]["locked"]) == dec(b0["USDT"]["locked"]) + Decimal("300")

    assert s.cancel_order(category="spot", symbol="BTCUSDT", orderId=limit_id)["result"]["orderId"] == limit_id
    assert s.get_open_orders(category="spot", symbol="BTCUSDT")["result"]["list"] == []
    one = s.get_open_orders(category="spot", orderId=limit_id)["result"]["list"]
    assert one[0]["orderStatus"] == "Cancelled"

    execs = s.get_executions(category="spot", symbol="BTCUSDT")["result"]["list"]
    mine = [e for e in execs if e["orderId"] == market_id]
    assert len(mine) == 1 and mine[0]["execQty"] == "0.01" and mine[0]["execPrice"] == "60000"

    b1 = pybit_balances(s)
    assert dec(b1["BTC"]["walletBalance"]) == dec(b0["BTC"]["walletBalance"]) + Decimal("0.01")
    assert dec(b1["USDT"]["walletBalance"]) == dec(b0["USDT"]["walletBalance"]) - Decimal("600")
    assert dec(b1["USDT"]["locked"]) == dec(b0["USDT"]["locked"])

    assert ledger_order(sim, "bybit-pybit", limit_id)["status"] == "canceled"
    assert ledger_order(sim, "bybit-pybit", market_id)["status"] == "filled"
    creates = logged(sim, seq, "/v5/order/create")
    assert len(creates) == 2
    # pybit signs json.dumps output (", " separators); the simulator verified those exact bytes.
    assert creates[0]["body"].startswith('{"category": "spot"')
    assert all(r["headers"]["x-bapi-sign-type"] == "2" for r in creates)


def test_pybit_reads_key_permissions(sim):
    s = pybit_client(sim, PYBIT_KEY, PYBIT_SECRET)
    r = s.get_api_key_information()["result"]
    assert r["apiKey"] == PYBIT_KEY
    assert r["permissions"]["Spot"] == ["SpotTrade"]
    assert r["permissions"]["Wallet"] == ["AccountTransfer"]
    assert r["permissions"]["ContractTrade"] == []
    assert r["expiredAt"] == "2099-01-01T00:00:00Z" and r["deadlineDay"] > 0
    assert r["ips"] == ["*"] and r["uta"] == 1
    ip = pybit_client(sim, WD_KEY, WD_SECRET).get_api_key_information()["result"]
    assert ip["ips"] == ["127.0.0.1"] and ip["isMaster"] is False
    assert ip["permissions"]["Wallet"] == ["AccountTransfer", "Withdraw"]


def test_pybit_wrong_secret_is_refused(sim):
    s = pybit_client(sim, PYBIT_KEY, "not-the-secret")
    orders_before = len(account(sim, "bybit-pybit")["orders"])
    with pytest.raises(InvalidRequestError) as err:
        s.get_wallet_balance(accountType="UNIFIED")
    assert type(err.value) is InvalidRequestError
    assert err.value.status_code == 10004
    with pytest.raises(InvalidRequestError) as err:
        s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="600")
    assert err.value.status_code == 10004
    assert len(account(sim, "bybit-pybit")["orders"]) == orders_before


def test_pybit_ip_bound_key_is_refused(sim):
    s = pybit_client(sim, IP_KEY, IP_SECRET)
    with pytest.raises(InvalidRequestError) as err:
        s.get_api_key_information()
    assert type(err.value) is InvalidRequestError
    assert err.value.status_code == 10010
    assert "Unmatched IP" in err.value.message


def test_pybit_permission_and_parameter_errors(sim):
    ro = pybit_client(sim, RO_KEY, RO_SECRET)
    with pytest.raises(InvalidRequestError) as err:
        ro.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01", price="30000")
    assert err.value.status_code == 10005
    with pytest.raises(InvalidRequestError) as err:
        ro.withdraw(coin="USDT", chain="ETH", address="0xabc", amount="1", timestamp=1)
    assert err.value.status_code == 10005

    s = pybit_client(sim, PYBIT_KEY, PYBIT_SECRET)
    cases = [
        (dict(category="spot", symbol="NOPEUSDT", side="Buy", orderType="Market", qty="1"), 10001),
        (dict(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01"), 10001),
        (dict(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="1", bogus="1"), 10001),
        (dict(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="100", price="30000"), 170131),
        (dict(category="futures", symbol="BTCUSDT", side="Buy", orderType="Market", qty="1"), 10001),
    ]
    for params, code in cases:
        with pytest.raises(InvalidRequestError) as err:
            s.place_order(**params)
        assert err.value.status_code == code, params
    with pytest.raises(InvalidRequestError) as err:
        s.cancel_order(category="spot", symbol="BTCUSDT", orderId="424242")
    assert err.value.status_code == 170213


def test_pybit_withdraw_and_records(sim):
    s = pybit_client(sim, WD_KEY, WD_SECRET)
    usdt0 = dec(pybit_balances(s)["USDT"]["walletBalance"])
    r = s.withdraw(coin="USDT", chain="ETH", address="0x000000000000000000000000000000000000dEaD",
                   amount="123.5", timestamp=1)
    wid = r["result"]["id"]
    assert dec(pybit_balances(s)["USDT"]["walletBalance"]) == usdt0 - Decimal("123.5")
    rows = s.get_withdrawal_records(coin="USDT")["result"]["rows"]
    assert rows[0]["withdrawId"] == wid and rows[0]["amount"] == "123.5" and rows[0]["chain"] == "ETH"
    assert s.get_deposit_records()["result"]["rows"] == []
    w = [w for w in account(sim, "bybit-other")["withdrawals"] if str(w["id"]) == wid]
    assert w and w[0]["address"] == "0x000000000000000000000000000000000000dEaD"

    t = s.create_internal_transfer(transferId="0b7d2f0e-0000-4000-8000-000000000001", coin="USDT",
                                   amount="5", fromAccountType="UNIFIED", toAccountType="FUND")
    assert t["result"] == {"transferId": "0b7d2f0e-0000-4000-8000-000000000001", "status": "SUCCESS"}
    assert account(sim, "bybit-other")["transfers"][-1]["to"] == "FUND"


def test_pybit_rate_limit_fault(sim):
    s = pybit_client(sim, PYBIT_KEY, PYBIT_SECRET)
    sim.faults(VENUE, rate_limits=1, retry_after_s=1)
    with pytest.raises(FailedRequestError) as err:
        s.get_wallet_balance(accountType="UNIFIED")
    assert err.value.status_code == 429
    assert pybit_balances(s)["USDT"]


def test_outage_fault_is_exchange_not_available(sim):
    ex = ccxt_client(sim, CCXT_KEY, CCXT_SECRET)
    ex.load_markets()
    sim.faults(VENUE, errors=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_ticker("BTC/USDT")
    s = pybit_client(sim, PYBIT_KEY, PYBIT_SECRET)
    sim.faults(VENUE, errors=1)
    with pytest.raises(FailedRequestError) as err:
        s.get_wallet_balance(accountType="UNIFIED")
    assert err.value.status_code == 503
    assert dec(ex.fetch_ticker("BTC/USDT")["last"]) == PRICE


def test_ccxt_withdraw_and_history(sim):
    ex = ccxt_client(sim, WD_KEY, WD_SECRET)
    usdt0 = dec(ex.fetch_balance()["USDT"]["total"])
    w = ex.withdraw("USDT", 7.25, "0x000000000000000000000000000000000000bEEF")
    assert w["id"]
    assert dec(ex.fetch_balance()["USDT"]["total"]) == usdt0 - Decimal("7.25")
    mine = [x for x in ex.fetch_withdrawals("USDT") if x["id"] == w["id"]]
    assert len(mine) == 1
    assert dec(mine[0]["amount"]) == Decimal("7.25") and mine[0]["status"] == "ok"
    assert mine[0]["addressTo"] == "0x000000000000000000000000000000000000bEEF"
    assert ex.fetch_deposits("USDT") == []
