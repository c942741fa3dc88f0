"""Shared fixtures for the real-client tests.

One simulator runs for the whole session, built from every fragment in `sim.d/*.toml`
(each venue's test module owns its fragment: venue table, accounts, keys). Listeners bind
port 0; addresses are read from the simulator's admin interface.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def keyfence_bin() -> str:
    env = os.environ.get("KEYFENCE_BIN")
    if env:
        return env
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "keyfence"
        if p.exists():
            return str(p)
    raise RuntimeError("keyfence binary not found; run `cargo build --release` or set KEYFENCE_BIN")


class Sim:
    def __init__(self, proc, admin, tmp):
        self.proc = proc
        self.admin = admin
        self.tmp = tmp
        self.venues = self._get("/admin/venues")
        self.cert_path = None
        if any(v["tls"] for v in self.venues.values()):
            pem = self._raw("/admin/cert")
            self.cert_path = str(pathlib.Path(tmp) / "sim-cert.pem")
            pathlib.Path(self.cert_path).write_text(pem)

    def _raw(self, path, method="GET", body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.admin + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def _get(self, path):
        return json.loads(self._raw(path))

    def url(self, venue: str) -> str:
        """Base URL of a venue listener, e.g. http://127.0.0.1:40123."""
        return self.venues[venue]["base_url"]

    def host(self, venue: str) -> str:
        """host:port of a venue listener."""
        return self.venues[venue]["addr"]

    def requests(self, venue=None, since=None):
        """Every request the simulator received (optionally for one venue, after seq `since`)."""
        q = []
        if venue:
            q.append(f"venue={venue}")
        if since is not None:
            q.append(f"since={since}")
        return self._get("/admin/requests" + ("?" + "&".join(q) if q else ""))

    def last_seq(self):
        reqs = self.requests()
        return reqs[-1]["seq"] if reqs else 0

    def state(self, venue):
        return self._get(f"/admin/state?venue={venue}")

    def set_price(self, venue, symbol, price):
        return json.loads(self._raw("/admin/price", "POST", {"venue": venue, "symbol": symbol, "price": str(price)}))

    def faults(self, venue, **faults):
        return json.loads(self._raw("/admin/faults", "POST", {"venue": venue, **faults}))

    def clear_faults(self):
        return json.loads(self._raw("/admin/faults", "DELETE"))


def _config_text():
    parts = ['[admin]\nbind = "127.0.0.1:0"\n']
    for frag in sorted((HERE / "sim.d").glob("*.toml")):
        parts.append(f"# --- {frag.name}\n" + frag.read_text())
    return "\n".join(parts)


@pytest.fixture(scope="session")
def sim():
    tmp = tempfile.mkdtemp(prefix="keyfence-sim-")
    cfg = pathlib.Path(tmp) / "sim.toml"
    cfg.write_text(_config_text())
    proc = subprocess.Popen(
        [keyfence_bin(), "sim", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    admin = None
    lines = []
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.match(r"admin\s+(http://\S+)", line)
        if m:
            admin = m.group(1)
            break
    if admin is None:
        proc.kill()
        raise RuntimeError("simulator did not start:\n" + "".join(lines) + (proc.stdout.read() or ""))
    s = Sim(proc, admin, tmp)
    yield s
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, f"simulator exited with {proc.returncode}"
    # After the gateway fixture (which reads the cert from here) has stopped its gateway.
    shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The signing gateway (`keyfence serve`) in front of the simulator, for test_gateway_*.py.

GW_VENUES = ("binance", "bybit", "okx", "coinbase", "kraken")

# The real keys keyfence holds (their sim side is sim.d/gateway.toml). Test-only values.
GW_REAL_KEYS = {
    "binance": {"api_key": "gw-binance-key", "secret": "gw-binance-secret-0123456789abcdef0123456789abcdef0"},
    "bybit": {"api_key": "gw-bybit-key", "secret": "gw-bybit-secret-0123456789abcdef"},
    "okx": {"api_key": "gw-okx-key", "secret": "gw-okx-secret-0123456789ABCDEF0", "passphrase": "Gw-Okx-Pass-1"},
    "coinbase": {
        "api_key": "organizations/coinbase-sim/apiKeys/gw-es256",
        "private_key": "-----BEGIN EC PRIVATE KEY-----\n"
        "MHcCAQEEIBdCgikgf1FVvlzyM/tK3yNIQSAw772YHmXBdMYzbLg3oAoGCCqGSM49\n"
        "AwEHoUQDQgAElplevKPYxmjDBp3+rhdO3J74qZxM4Uim6Oktcq6NcmtUb63+J1pe\n"
        "ICZ9+IwcfsuC6zZIrHXwHfqfLDK8IjUg0g==\n-----END EC PRIVATE KEY-----\n",
    },
    "kraken": {
        "api_key": "gw-kraken-key",
        "secret": "nTy+/i6bvs3KzOeOdeIcdbdmXRfGVENs3nYiXRPF9rZt6I/6PtxTa1K3Y/waeolko7/AzF7vH1JLEs09+7Gy+g==",
    },
}

# Every venue's BTC market against its dollar (normalised: Kraken XBTUSD, the XXBTZUSD that ccxt
# sends, and Coinbase BTC-USD are all BTCUSD). ETH markets are outside the allowlist. Limits: one order at most 1000 in quote value,
# a limit price within 10 % of the reference price.
GW_CONFIG_POLICIES = """
[policies.gw-spot]
classes = ["read", "trade", "cancel"]
symbols = ["BTCUSDT", "BTCUSD"]
max_order_notional = "1000"
price_band_pct = "10"
"""

GW_PASSPHRASE = "gw-test-vault-passphrase"


class Gateway:
    def __init__(self, proc, home, env, config, urls, stderr_path):
        self.proc = proc
        self.home = home
        self.env = env
        self.config = config
        self.urls = urls
        self.stderr_path = stderr_path
        self.issued = []  # every bot credential handed out, to check none leaks

    def run(self, *args, stdin=None, check=True):
        p = subprocess.run(
            [keyfence_bin(), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and p.returncode != 0:
            raise RuntimeError(f"keyfence {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def url(self, venue: str) -> str:
        """Base URL of the gateway's listener for `venue` (https for coinbase)."""
        return self.urls[venue]

    def host(self, venue: str) -> str:
        """host:port of the listener (coinbase-advanced-py takes a host, not a URL)."""
        return self.urls[venue].split("://", 1)[1]

    def cert(self, venue: str) -> str:
        """The self-signed certificate of a TLS listener."""
        return str(pathlib.Path(self.home) / "tls" / f"{venue}.pem")

    def bot(self, venue: str, policy: str = "gw-spot", name=None) -> dict:
        """Issue bot credentials for `venue`'s real key: {"api_key", "secret", "passphrase", "private_key"}."""
        name = name or f"gw-{venue}-{len(self.issued)}"
        p = self.run("bot", "add", name, "--key", f"gw-{venue}", "--policy", policy,
                     "--config", self.config, "--format", "json")
        creds = json.loads(p.stdout.strip().splitlines()[-1])
        creds["name"] = name
        self.issued.append(creds)
        return creds

    def journal(self, since_seq=0):
        """Journal entries after `since_seq`."""
        p = self.run("journal", "export", "--format", "jsonl", "--config", self.config)
        out = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        return [e for e in out if e["seq"] > since_seq]

    def journal_where(self, pred, since_seq=0, timeout=5.0):
        """Entries after `since_seq` that satisfy `pred`, waiting up to `timeout` seconds for
        the first: the gateway commits an allowed request's entry just after answering it
        (refusals are journaled before they are answered)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.journal(since_seq) if pred(e)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def last_seq(self):
        p = self.run("journal", "tail", "-n", "1", "--format", "json", "--config", self.config)
        entries = json.loads(p.stdout)
        return entries[-1]["seq"] if entries else 0

    # The CLI bumps the store's control stamp when it commits; the gateway looks at the stamp at
    # most once a millisecond and `kill` returns 2 ms after the bump, so the very next request
    # sees the new mode (no waiting on its 50 ms poll).
    def kill(self):
        self.run("kill", "--reason", "gateway client test", "--config", self.config)

    def resume(self):
        self.run("resume", "--config", self.config)


def _gw_config(sim, home):
    parts = ['[gateway]\nsync = "normal"\n']
    for v in GW_VENUES:
        parts.append(f'[listeners.{v}]\nbind = "127.0.0.1:0"\nupstream = "{sim.url(v)}"\n')
        if sim.url(v).startswith("https://"):
            parts.append(f'ca_cert = "{sim.cert_path}"\n')
        if v == "coinbase":
            # coinbase-advanced-py speaks https only.
            parts.append("tls = true\n")
    parts.append(GW_CONFIG_POLICIES)
    path = pathlib.Path(home) / "gateway.toml"
    path.write_text("\n".join(parts))
    return str(path)


@pytest.fixture(scope="session")
def gateway(sim):
    home = tempfile.mkdtemp(prefix="keyfence-gw-")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("KEYFENCE_") or k == "KEYFENCE_BIN"
    }
    env.update(KEYFENCE_HOME=home, KEYFENCE_PASSPHRASE=GW_PASSPHRASE, KEYFENCE_SCRYPT_LOG_N="10")
    config = _gw_config(sim, home)
    stderr_path = pathlib.Path(home) / "serve.stderr"
    gw = Gateway(None, home, env, config, {}, stderr_path)
    for v in GW_VENUES:
        gw.run("vault", "add", f"gw-{v}", "--exchange", v, "--service", f"gw-{v}-bot",
               stdin=json.dumps(GW_REAL_KEYS[v]))

    err = open(stderr_path, "w")
    proc = subprocess.Popen(
        [keyfence_bin(), "serve", "--config", config],
        stdout=subprocess.PIPE,
        stderr=err,
        env=env,
        text=True,
    )
    gw.proc = proc
    lines = []
    deadline = time.time() + 30
    running = False
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.match(r"(\w+)\s+(https?://\S+) -> ", line)
        if m:
            gw.urls[m.group(1)] = m.group(2)
        if line.startswith("gateway running"):
            running = True
            break
    if not running:
        proc.kill()
        err.close()
        raise RuntimeError("gateway did not start:\n" + "".join(lines) + stderr_path.read_text())
    assert set(gw.urls) == set(GW_VENUES), lines
    yield gw

    proc.send_signal(signal.SIGTERM)
    try:
        rest, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    err.close()
    assert proc.returncode == 0, f"gateway exited with {proc.returncode}"
    said = "".join(lines) + (rest or "") + stderr_path.read_text()
    assert "gateway running" in said and "stopping" in said, said[-2000:]
    secrets = [s for v in GW_REAL_KEYS.values() for k, s in v.items() if k != "api_key"]
    secrets += [c[k] for c in gw.issued for k in ("secret", "passphrase", "private_key") if c.get(k)]
    for s in secrets:
        for piece in s.splitlines() or [s]:
            if len(piece) >= 8 and "-----" not in piece:
                assert piece not in said, "a secret reached the gateway's output"
    shutil.rmtree(home, ignore_errors=True)
