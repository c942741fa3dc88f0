"""Shared fixtures for the real-client tests.

One simulator runs for the whole session, built from every fragment in `sim.d/*.toml`
(each venue's test module owns its fragment: venue table, accounts, keys). Listeners bind
port 0; addresses are read from the simulator's admin interface.
"""

import json
import os
import pathlib
import re
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
