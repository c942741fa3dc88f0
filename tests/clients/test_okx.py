"""Real clients against the simulated OKX v5: ccxt and python-okx, unchanged but for the base URL.

Each client trades on its own simulator account (sim.d/okx.toml), and every check reads balance
and order state before and after, so no test depends on another's order.

python-okx 0.4.4 never raises on an API error: `OkxClient._request` returns `response.json()`
whatever the HTTP status (its `OkxAPIException` is defined but never raised). Its failure cases
therefore assert OKX's own error code in the returned body and the HTTP status the simulator
logged, not an exception class.
"""

from decimal import Decimal

import ccxt
import okx.Account as Account
import okx.Funding as Funding
import okx.MarketData as MarketData
import okx.PublicData as PublicData
import okx.Trade as Trade
import pytest

PASSPHRASE = "Okx-Pass-1"
KEYS = {
    "ccxt": ("okx-ccxt-key", "okx-ccxt-secret-0123456789ABCDEF"),
    "pyokx": ("okx-pyokx-key", "okx-pyokx-secret-0123456789ABCDEF"),
    "readonly": ("okx-readonly-key", "okx-readonly-secret-0123456789AB"),
    "fenced": ("okx-fenced-key", "okx-fenced-secret-0123456789ABCD"),
    "withdraw": ("okx-withdraw-key", "okx-withdraw-secret-0123456789AB"),
}


def D(x) -> Decimal:
    return Decimal(str(x))


def account_state(sim, name):
    return sim.state("okx")["accounts"][name]


def ledger_balance(sim, account, ccy):
    b = account_state(sim, account)["balances"].get(ccy, {"free": "0", "locked": "0"})
    return D(b["free"]), D(b["locked"])


def okx_requests(sim, since, path=None):
    return [r for r in sim.requests("okx", since=since) if path is None or r["path"] == path]


# ---------------------------------------------------------------------------------------------
# ccxt


def ccxt_client(sim, which="ccxt", secret=None):
    key, good_secret = KEYS[which]
    ex = ccxt.okx(
        {
            "apiKey": key,
            "secret": secret or good_secret,
            "password": PASSPHRASE,
            "timeout": 5000,
            "enableRateLimit": False,
        }
    )
    ex.urls["api"]["rest"] = sim.url("okx")
    return ex


def test_ccxt_markets_ticker_and_key_permissions(sim):
    ex = ccxt_client(sim)
    markets = ex.load_markets()
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["id"] == "BTC-USDT"
    assert markets["BTC/USDT"]["spot"] is True
    assert ex.fetch_ticker("BTC/USDT")["last"] == 60000
    config = ex.private_get_account_config()
    assert config["code"] == "0"
    assert config["data"][0]["perm"] == "read_only,trade"
    assert config["data"][0]["label"] == "ccxt bot"
    assert config["data"][0]["ip"] == ""


def test_ccxt_trades_end_to_end(sim):
    ex = ccxt_client(sim)
    ex.load_markets()
    seq = sim.last_seq()
    before = ex.fetch_balance()
    usdt_free0 = D(before["USDT"]["free"])
    btc_total0 = D(before["BTC"]["total"])

    # A limit buy far below the market rests and locks 0.001 * 30000 = 30 USDT.
    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.001, 30000)
    assert limit["id"]
    resting = ex.fetch_order(limit["id"], "BTC/USDT")
    assert resting["status"] == "open"
    assert resting["price"] == 30000 and resting["amount"] == 0.001
    assert D(ex.fetch_balance()["USDT"]["used"]) >= D("30")

    # A market buy of 0.01 BTC fills at the reference price.
    market = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    filled = ex.fetch_order(market["id"], "BTC/USDT")
    assert filled["status"] == "closed"
    assert filled["filled"] == 0.01 and filled["average"] == 60000

    after = ex.fetch_balance()
    assert D(after["BTC"]["total"]) - btc_total0 == D("0.01")
    assert usdt_free0 - D(after["USDT"]["free"]) == D("630")  # 600 spent + 30 locked

    open_ids = [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    assert limit["id"] in open_ids and market["id"] not in open_ids

    trades = ex.fetch_my_trades("BTC/USDT")
    mine = [t for t in trades if t["order"] == market["id"]]
    assert len(mine) == 1 and mine[0]["amount"] == 0.01 and mine[0]["price"] == 60000

    ex.cancel_order(limit["id"], "BTC/USDT")
    assert ex.fetch_order(limit["id"], "BTC/USDT")["status"] == "canceled"
    assert limit["id"] not in [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    assert D(ex.fetch_balance()["USDT"]["free"]) == usdt_free0 - D("600")

    # The simulator saw ccxt's own requests, signed, with the key and passphrase headers
    # (the passphrase's value is not asserted: the request log may come to redact it).
    placed = okx_requests(sim, seq, "/api/v5/trade/batch-orders")
    assert len(placed) == 2 and all(r["status"] == 200 for r in placed)
    assert all(r["headers"]["ok-access-key"] == "okx-ccxt-key" for r in placed)
    assert all("ok-access-passphrase" in r["headers"] for r in placed)
    assert len(okx_requests(sim, seq, "/api/v5/trade/cancel-order")) == 1


def test_ccxt_wrong_secret_is_an_authentication_error(sim):
    ex = ccxt_client(sim, secret="not-the-secret")
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as err:
        ex.fetch_balance()
    assert type(err.value) is ccxt.AuthenticationError
    assert "50113" in str(err.value)
    logged = okx_requests(sim, seq)
    assert logged and logged[-1]["status"] == 401


def test_ccxt_ip_fenced_key_is_a_permission_error(sim):
    ex = ccxt_client(sim, "fenced")
    seq = sim.last_seq()
    usdt0 = ledger_balance(sim, "okx-ccxt", "USDT")
    with pytest.raises(ccxt.PermissionDenied) as err:
        ex.fetch_balance()
    assert "50110" in str(err.value)
    assert okx_requests(sim, seq)[-1]["status"] == 401
    assert ledger_balance(sim, "okx-ccxt", "USDT") == usdt0


def test_ccxt_read_only_key_cannot_trade(sim):
    ex = ccxt_client(sim, "readonly")
    assert D(ex.fetch_balance()["USDT"]["total"]) > 0
    orders0 = len(account_state(sim, "okx-ccxt")["orders"])
    # OKX answers 50120, for which ccxt 4.5.90 has no class of its own: its generic ExchangeError.
    with pytest.raises(ccxt.ExchangeError) as err:
        ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert "50120" in str(err.value)
    assert len(account_state(sim, "okx-ccxt")["orders"]) == orders0


def test_ccxt_unknown_order_and_insufficient_funds_are_native(sim):
    ex = ccxt_client(sim)
    ex.load_markets()
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("999999999", "BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 1000, 50000)


def test_ccxt_withdraw_transfer_and_history(sim):
    ex = ccxt_client(sim, "withdraw")
    free0, _ = ledger_balance(sim, "okx-funding", "BTC")
    wd = ex.withdraw("BTC", 0.1, "bc1qccxtdestination")
    assert wd["id"]
    free1, _ = ledger_balance(sim, "okx-funding", "BTC")
    assert free0 - free1 == D("0.1")
    history = ex.fetch_withdrawals("BTC")
    assert any(w["id"] == wd["id"] and w["address"] == "bc1qccxtdestination" for w in history)

    moved = ex.transfer("USDT", 7, "funding", "trading")
    assert moved["id"]
    transfers = account_state(sim, "okx-funding")["transfers"]
    assert any(t["id"] == int(moved["id"]) and D(t["amount"]) == 7 for t in transfers)

    # The trading key has no withdraw permission: OKX's 50120, and nothing moves.
    trader = ccxt_client(sim)
    usdt0 = ledger_balance(sim, "okx-ccxt", "USDT")
    with pytest.raises(ccxt.ExchangeError) as err:
        trader.withdraw("USDT", 1, "0xfeedbeef")
    assert "50120" in str(err.value)
    assert ledger_balance(sim, "okx-ccxt", "USDT") == usdt0


# ---------------------------------------------------------------------------------------------
# python-okx


def pyokx(api, sim, which="pyokx", secret=None):
    key, good_secret = KEYS[which]
    return api(key, secret or good_secret, PASSPHRASE, flag="0", domain=sim.url("okx"), debug=False)


def usdt_detail(balance_answer, ccy="USDT"):
    assert balance_answer["code"] == "0", balance_answer
    return next(d for d in balance_answer["data"][0]["details"] if d["ccy"] == ccy)


def test_python_okx_public_data(sim):
    market = MarketData.MarketAPI(flag="0", domain=sim.url("okx"), debug=False)
    t = market.get_ticker(instId="BTC-USDT")
    assert t["code"] == "0" and t["data"][0]["last"] == "60000"
    public = PublicData.PublicAPI(flag="0", domain=sim.url("okx"), debug=False)
    inst = public.get_instruments(instType="SPOT")
    assert {i["instId"] for i in inst["data"]} == {"BTC-USDT", "ETH-USDT"}


def test_python_okx_trades_end_to_end(sim):
    acct = pyokx(Account.AccountAPI, sim)
    trade = pyokx(Trade.TradeAPI, sim)
    funding = pyokx(Funding.FundingAPI, sim)
    seq = sim.last_seq()

    config = acct.get_account_config()
    assert config["code"] == "0" and config["data"][0]["perm"] == "read_only,trade"
    assert config["data"][0]["uid"] == config["data"][0]["mainUid"]

    usdt0 = D(usdt_detail(acct.get_account_balance())["availBal"])
    btc0 = D(usdt_detail(acct.get_account_balance(ccy="BTC"), "BTC")["eq"])
    fund = funding.get_balances(ccy="USDT")
    assert fund["code"] == "0" and D(fund["data"][0]["availBal"]) == usdt0

    limit = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", sz="0.001", px="30000")
    assert limit["code"] == "0" and limit["data"][0]["sCode"] == "0", limit
    limit_id = limit["data"][0]["ordId"]
    # python-okx's market buy is quote-sized by default (tgtCcy quote_ccy): 600 USDT.
    market = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="600")
    assert market["code"] == "0", market
    market_id = market["data"][0]["ordId"]

    got = trade.get_order(instId="BTC-USDT", ordId=market_id)["data"][0]
    assert got["state"] == "filled" and D(got["accFillSz"]) == D("0.01") and D(got["avgPx"]) == 60000
    assert trade.get_order(instId="BTC-USDT", ordId=limit_id)["data"][0]["state"] == "live"

    pending = trade.get_order_list(instType="SPOT")
    assert pending["code"] == "0"
    assert [o["ordId"] for o in pending["data"]] == [limit_id]

    fills = trade.get_fills(instType="SPOT", instId="BTC-USDT")
    mine = [f for f in fills["data"] if f["ordId"] == market_id]
    assert len(mine) == 1 and D(mine[0]["fillSz"]) == D("0.01")

    usdt = usdt_detail(acct.get_account_balance())
    assert usdt0 - D(usdt["availBal"]) == D("630") and D(usdt["frozenBal"]) == D("30")
    assert D(usdt_detail(acct.get_account_balance(ccy="BTC"), "BTC")["eq"]) - btc0 == D("0.01")

    cancelled = trade.cancel_order(instId="BTC-USDT", ordId=limit_id)
    assert cancelled["code"] == "0" and cancelled["data"][0]["sCode"] == "0", cancelled
    assert trade.get_order(instId="BTC-USDT", ordId=limit_id)["data"][0]["state"] == "canceled"
    assert trade.get_order_list(instType="SPOT")["data"] == []
    history = trade.get_orders_history(instType="SPOT", state="canceled")
    assert limit_id in [o["ordId"] for o in history["data"]]
    assert usdt0 - D(usdt_detail(acct.get_account_balance())["availBal"]) == D("600")

    # python-okx (flag '0') signs every private call and sends x-simulated-trading: 0.
    logged = okx_requests(sim, seq, "/api/v5/trade/order")
    assert logged and all(r["headers"]["x-simulated-trading"] == "0" for r in logged)
    assert all(r["headers"]["ok-access-key"] == "okx-pyokx-key" for r in logged)


def test_python_okx_wrong_secret_gets_50113(sim):
    acct = pyokx(Account.AccountAPI, sim, secret="not-the-secret")
    seq = sim.last_seq()
    answer = acct.get_account_balance()
    assert answer == {"code": "50113", "msg": "Invalid Sign", "data": []}
    assert okx_requests(sim, seq, "/api/v5/account/balance")[-1]["status"] == 401


def test_python_okx_ip_fenced_key_gets_50110(sim):
    trade = pyokx(Trade.TradeAPI, sim, "fenced")
    seq = sim.last_seq()
    orders0 = len(account_state(sim, "okx-ccxt")["orders"])
    answer = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="100")
    assert answer["code"] == "50110" and answer["data"] == []
    assert okx_requests(sim, seq, "/api/v5/trade/order")[-1]["status"] == 401
    assert len(account_state(sim, "okx-ccxt")["orders"]) == orders0


def test_python_okx_withdrawal_transfer_and_history(sim):
    funding = pyokx(Funding.FundingAPI, sim, "withdraw")
    free0, _ = ledger_balance(sim, "okx-funding", "USDT")
    wd = funding.withdrawal(ccy="USDT", amt="250", dest="4", toAddr="0xfeedbeef", chain="USDT-ERC20")
    assert wd["code"] == "0", wd
    free1, _ = ledger_balance(sim, "okx-funding", "USDT")
    assert free0 - free1 == D("250")
    hist = funding.get_withdrawal_history(ccy="USDT")
    assert any(h["wdId"] == wd["data"][0]["wdId"] and h["to"] == "0xfeedbeef" for h in hist["data"])
    recorded = account_state(sim, "okx-funding")["withdrawals"]
    assert any(w["address"] == "0xfeedbeef" and D(w["amount"]) == 250 for w in recorded)

    moved = funding.funds_transfer(ccy="USDT", amt="10", from_="6", to="18")
    assert moved["code"] == "0" and moved["data"][0]["from"] == "6", moved
    assert any(D(t["amount"]) == 10 for t in account_state(sim, "okx-funding")["transfers"])
    assert funding.get_deposit_history()["code"] == "0"

    # A trade-only key may not withdraw: 50120, and nothing leaves the account.
    trader = pyokx(Funding.FundingAPI, sim)
    usdt0 = ledger_balance(sim, "okx-pyokx", "USDT")
    refused = trader.withdrawal(ccy="USDT", amt="1", dest="4", toAddr="0xfeedbeef")
    assert refused["code"] == "50120"
    assert ledger_balance(sim, "okx-pyokx", "USDT") == usdt0
