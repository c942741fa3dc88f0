"""ccxt and python-okx through the gateway (`keyfence serve`) with bot credentials: allowed
orders reach the simulated OKX signed with the real key; refusals are OKX's permission error
50120, journaled once, and never reach the simulator. Fixtures: conftest.py `gateway`.

- ccxt 4.5.90 has no class of its own for 50120: it raises its generic `ExchangeError`, and the
  refusals assert exactly that class.
- python-okx 0.4.4 never raises on an API error (it returns the error JSON), so its refusals
  assert the returned code 50120 and the rule id in `msg`.
"""

from decimal import Decimal

import ccxt
import okx.Account as Account
import okx.Funding as Funding
import okx.Trade as Trade
import pytest

from gwhelp import denied_body, refused, signed

VENUE = "okx"
REAL_KEY = "gw-okx-key"
ACCOUNT = "gw-okx"
D = Decimal


@pytest.fixture(scope="module")
def bots(gateway):
    return {"ccxt": gateway.bot(VENUE), "pyokx": gateway.bot(VENUE)}


def make_ccxt(gateway, creds, secret=None):
    ex = ccxt.okx({"apiKey": creds["api_key"], "secret": secret or creds["secret"],
                   "password": creds["passphrase"], "timeout": 5000, "enableRateLimit": False})
    ex.urls["api"]["rest"] = gateway.url(VENUE)
    ex.load_markets()
    return ex


def pyokx(api, gateway, creds, secret=None):
    return api(creds["api_key"], secret or creds["secret"], creds["passphrase"], flag="0",
               domain=gateway.url(VENUE), debug=False)


def account(sim):
    return sim.state(VENUE)["accounts"][ACCOUNT]


def balances(sim):
    return {a: (D(str(b["free"])), D(str(b["locked"]))) for a, b in account(sim)["balances"].items()}


def assert_real_key_only(sim, since, bot_key):
    reqs = signed(sim, VENUE, since)
    assert reqs, "nothing reached the simulator"
    assert all(r["headers"]["ok-access-key"] == REAL_KEY for r in reqs)
    assert all(bot_key not in str(r) for r in reqs)


def order_posts(sim, since):
    return [r for r in signed(sim, VENUE, since)
            if r["method"] == "POST" and r["path"] in ("/api/v5/trade/order", "/api/v5/trade/batch-orders")]


# ---------------------------------------------------------------------------------------------
# ccxt


def test_ccxt_orders_fill_with_the_real_key(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 55000)
    market = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert ex.fetch_order(limit["id"], "BTC/USDT")["status"] == "open"
    filled = ex.fetch_order(market["id"], "BTC/USDT")
    assert filled["status"] == "closed" and filled["filled"] == 0.01 and filled["average"] == 60000
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] + D("0.01")
    assert mid["USDT"][1] == before["USDT"][1] + D("550")
    ex.cancel_order(limit["id"], "BTC/USDT")
    assert balances(sim)["USDT"][1] == before["USDT"][1]
    assert [r["status"] for r in order_posts(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["ccxt"]["api_key"])


def test_ccxt_refusals_are_exchange_errors_50120(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    before = balances(sim)
    cases = [
        ("class-not-allowed", lambda: ex.withdraw("USDT", 1, "0xfeedbeef")),
        ("class-not-allowed", lambda: ex.transfer("USDT", 7, "funding", "trading")),
        ("max-order-notional", lambda: ex.create_order("BTC/USDT", "market", "buy", 0.1)),
        ("symbol-not-allowed", lambda: ex.create_order("ETH/USDT", "limit", "buy", 0.1, 3000)),
        ("price-band", lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)),
    ]
    for rule, call in cases:
        # ccxt maps OKX's 50120 to no specific class: its generic ExchangeError.
        e = refused(gateway, sim, VENUE, rule, ccxt.ExchangeError, call)
        assert "50120" in str(e) and rule in str(e)
    assert balances(sim) == before


def test_ccxt_kill_switch_refuses_new_orders(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])
    gateway.kill()
    try:
        e = refused(gateway, sim, VENUE, "kill-switch-halted", ccxt.ExchangeError,
                    lambda: ex.create_order("BTC/USDT", "market", "buy", 0.001))
        assert "50120" in str(e)
    finally:
        gateway.resume()
    assert ex.create_order("BTC/USDT", "market", "buy", 0.001)["id"]


def test_ccxt_wrong_bot_secret_is_an_authentication_error(gateway, sim, bots):
    ex = make_ccxt(gateway, bots["ccxt"])  # markets load with the right secret (a signed read)
    ex.secret = "0" * 32
    seq = sim.last_seq()
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.fetch_balance()
    assert type(info.value) is ccxt.AuthenticationError
    assert "50113" in str(info.value)
    assert signed(sim, VENUE, seq) == []


# ---------------------------------------------------------------------------------------------
# python-okx


def test_pyokx_orders_fill_with_the_real_key(gateway, sim, bots):
    trade = pyokx(Trade.TradeAPI, gateway, bots["pyokx"])
    before = balances(sim)
    seq = sim.last_seq()
    limit = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", sz="0.01", px="56000")
    assert limit["code"] == "0" and limit["data"][0]["sCode"] == "0", limit
    limit_id = limit["data"][0]["ordId"]
    # python-okx's market buy is quote-sized by default: 600 USDT.
    market = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="600")
    assert market["code"] == "0", market
    got = trade.get_order(instId="BTC-USDT", ordId=market["data"][0]["ordId"])["data"][0]
    assert got["state"] == "filled" and D(got["accFillSz"]) == D("0.01")
    mid = balances(sim)
    assert mid["BTC"][0] == before["BTC"][0] + D("0.01")
    assert mid["USDT"][1] == before["USDT"][1] + D("560")
    cancelled = trade.cancel_order(instId="BTC-USDT", ordId=limit_id)
    assert cancelled["code"] == "0", cancelled
    assert balances(sim)["USDT"][1] == before["USDT"][1]
    assert [r["status"] for r in order_posts(sim, seq)] == [200, 200]
    assert_real_key_only(sim, seq, bots["pyokx"]["api_key"])


def test_pyokx_refusals_answer_50120(gateway, sim, bots):
    trade = pyokx(Trade.TradeAPI, gateway, bots["pyokx"])
    funding = pyokx(Funding.FundingAPI, gateway, bots["pyokx"])
    before = balances(sim)
    cases = [
        ("class-not-allowed", lambda: funding.withdrawal(ccy="USDT", amt="1", dest="4", toAddr="0xfeedbeef",
                                                         chain="USDT-ERC20")),
        ("class-not-allowed", lambda: funding.funds_transfer(ccy="USDT", amt="10", from_="6", to="18")),
        ("max-order-notional", lambda: trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy",
                                                         ordType="market", sz="6000")),
        ("symbol-not-allowed", lambda: trade.place_order(instId="ETH-USDT", tdMode="cash", side="buy",
                                                         ordType="limit", sz="0.1", px="3000")),
        ("price-band", lambda: trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy",
                                                 ordType="limit", sz="0.01", px="30000")),
    ]
    for rule, call in cases:
        answer = denied_body(gateway, sim, VENUE, rule, call)
        assert answer["code"] == "50120" and answer["data"] == [], answer
        assert rule in answer["msg"]
    assert balances(sim) == before


def test_pyokx_kill_switch_refuses_new_orders(gateway, sim, bots):
    trade = pyokx(Trade.TradeAPI, gateway, bots["pyokx"])

    def buy():
        return trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="60")

    gateway.kill()
    try:
        answer = denied_body(gateway, sim, VENUE, "kill-switch-halted", buy)
        assert answer["code"] == "50120"
    finally:
        gateway.resume()
    assert buy()["code"] == "0"


def test_pyokx_wrong_bot_secret_gets_50113(gateway, sim, bots):
    acct = pyokx(Account.AccountAPI, gateway, bots["pyokx"], secret="0" * 32)
    seq = sim.last_seq()
    answer = acct.get_account_balance()
    assert answer["code"] == "50113", answer
    assert signed(sim, VENUE, seq) == []
