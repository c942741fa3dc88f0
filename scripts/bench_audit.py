"""Driver for scripts/bench-audit: see there."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec

KEYS = int(sys.argv[1])
LATENCY = int(sys.argv[2])
BIN = os.path.abspath("target/release/keyfence")
VENUES = ["binance", "bybit", "okx", "coinbase", "kraken"]
SYMBOL = {"binance": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT", "coinbase": "BTC-USD", "kraken": "XBTUSD"}
PERMS = {
    "binance": '["enableReading", "enableSpotAndMarginTrading"]',
    "bybit": '["Spot.SpotTrade"]',
    "okx": '["read_only", "trade"]',
    "coinbase": '["can_view", "can_trade"]',
    "kraken": '["query-funds", "modify-trades"]',
}
KRAKEN_SECRET = "a3Jha2VuLWJlbmNoLXNlY3JldC0wMTIzNDU2Nzg5"

tmp = tempfile.mkdtemp(prefix="keyfence-bench-audit-")
ec_key = ec.generate_private_key(ec.SECP256R1())
ec_pem = ec_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()).decode()
ec_pub = ec_key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode()

cfg = ['[admin]\nbind = "127.0.0.1:0"\n']
creds = []
for v in VENUES:
    tls = "true" if v == "coinbase" else "false"
    cfg.append(f'[venues.{v}]\nbind = "127.0.0.1:0"\ntls = {tls}\nprices = {{ {SYMBOL[v]} = "60000" }}\n')
    cfg.append(f'[[accounts]]\nvenue = "{v}"\nname = "a"\n')
for i in range(KEYS):
    v = VENUES[i % len(VENUES)]
    name = f"{v}-{i}"
    if v == "coinbase":
        material, cred = f'public_key = """{ec_pub}"""', {"api_key": name, "private_key": ec_pem}
    elif v == "kraken":
        material, cred = f'secret = "{KRAKEN_SECRET}"', {"api_key": name, "secret": KRAKEN_SECRET}
    else:
        secret = f"{v}-bench-secret-{i}-0123456789"
        material, cred = f'secret = "{secret}"', {"api_key": name, "secret": secret}
    extra = 'passphrase = "Bench1!"\n' if v == "okx" else ""
    if v == "okx":
        cred["passphrase"] = "Bench1!"
    cfg.append(f'[[keys]]\nvenue = "{v}"\naccount = "a"\napi_key = "{name}"\n{material}\n{extra}permissions = {PERMS[v]}\n')
    creds.append((name, v, cred))
open(os.path.join(tmp, "sim.toml"), "w").write("\n".join(cfg))

sim = subprocess.Popen([BIN, "sim", "--config", os.path.join(tmp, "sim.toml")], stdout=subprocess.PIPE, text=True)
admin = None
for line in sim.stdout:
    m = re.match(r"admin\s+(http://\S+)", line)
    if m:
        admin = m.group(1)
        break
try:
    venues = json.load(urllib.request.urlopen(admin + "/admin/venues"))
    cert = os.path.join(tmp, "cert.pem")
    open(cert, "w").write(urllib.request.urlopen(admin + "/admin/cert").read().decode())
    env = dict(os.environ, KEYFENCE_HOME=os.path.join(tmp, "home"), KEYFENCE_PASSPHRASE="bench-passphrase",
               KEYFENCE_SCRYPT_LOG_N="10")
    for name, v, cred in creds:
        subprocess.run([BIN, "vault", "add", name, "--exchange", v, "--service", name, "--endpoint",
                        venues[v]["base_url"]], input=json.dumps(cred), text=True, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    for v in VENUES:
        req = urllib.request.Request(admin + "/admin/faults", data=json.dumps({"venue": v, "latency_ms": LATENCY}).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req).read()

    def audit(concurrency):
        t = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KIB %M", BIN, "audit", "--all", "--format", "json",
                            "--fail-on", "never", "--ca-cert", cert, "--concurrency", str(concurrency)],
                           env=env, capture_output=True, text=True)
        wall = time.monotonic() - t
        rss = int(re.search(r"MAXRSS_KIB (\d+)", p.stderr).group(1))
        report = json.loads(p.stdout)
        ok = sum(1 for k in report["keys"] if k["status"] == "ok")
        return wall, rss, ok, p.returncode

    print(f"audit of {KEYS} keys over {len(VENUES)} venues, {LATENCY} ms injected latency per request")
    wall, rss, ok, rc = audit(16)
    print(f"  concurrency 16: wall {wall:.2f} s, {ok}/{KEYS} audited, exit {rc}, peak RSS {rss / 1024:.1f} MiB")
    wall1, rss1, ok1, rc1 = audit(1)
    print(f"  concurrency 1:  wall {wall1:.2f} s, {ok1}/{KEYS} audited, exit {rc1}, peak RSS {rss1 / 1024:.1f} MiB")
    print(f"  serial / concurrent: {wall1 / wall:.1f}x; one round trip is >= {LATENCY} ms, so serial is >= {KEYS * LATENCY / 1000:.1f} s")
finally:
    sim.send_signal(2)
    sim.wait(timeout=10)
