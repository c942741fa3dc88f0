"""The README's signing-gateway quick start, run as written: the shell block, then the ccxt block,
then ccxt built as freqtrade builds it from the README's `config.json` block (freqtrade itself
is not installed here: it passes `ccxt_config` to ccxt's constructor with the key and secret).

It uses the fixed ports of examples/sim.toml (9100-9105) and examples/gateway.toml (8701-8705),
so it must not run while something else holds them (the Rust tests finish before pytest starts).
"""

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

from conftest import ROOT, keyfence_bin

DOC = ROOT / "README.md"


def blocks(lang):
    text = DOC.read_text()
    section = text[text.index("## The signing gateway"):]
    section = section[: section.index("\n## ", 3)]
    return re.findall(r"```" + lang + r"\n(.*?)```", section, re.S)


def wait_port(port, deadline):
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def test_the_gateway_quick_start_works_as_written(tmp_path):
    (sh,) = blocks("sh")
    (py,) = blocks("python")
    (freqtrade_config,) = blocks("json")
    bindir = pathlib.Path(keyfence_bin()).parent
    env = dict(os.environ)
    env.update(
        PATH=f"{bindir}:{env.get('PATH', '')}",
        KEYFENCE_HOME=str(tmp_path / "home"),
        KEYFENCE_PASSPHRASE="quick start passphrase",
        KEYFENCE_SCRYPT_LOG_N="10",
    )
    # The block names examples/... relative to the repository root, as a new user runs it there.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    proc = subprocess.Popen(
        ["sh", "-ec", sh],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_port(8701, time.time() + 20), "the gateway did not start"
        creds = tmp_path / "grid-bot.json"
        assert creds.exists()
        out = subprocess.run(
            [sys.executable, "-c", py], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        # examples/sim.toml gives the Binance account 10000 USDT.
        assert float(out.stdout.strip().splitlines()[-1]) == 10000.0, out.stdout
        secret = __import__("json").loads(creds.read_text())["secret"]
        (tmp_path / "config.json").write_text(freqtrade_config)
        as_freqtrade = (
            "import ccxt, json\n"
            "ex = json.load(open('config.json'))['exchange']\n"
            "creds = json.load(open('grid-bot.json'))\n"
            "cfg = {'apiKey': creds['api_key'], 'secret': creds['secret'], **ex['ccxt_config']}\n"
            "x = getattr(ccxt, ex['name'])(cfg)\n"
            "x.load_markets()\n"
            "print(x.fetch_ticker('BTC/USDT')['last'] > 0)\n"
            "print(x.fetch_balance()['total']['USDT'])\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", as_freqtrade], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["True", "10000.0"], out.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log = proc.stdout.read().decode()
    assert "gateway running" in log, log
    assert secret not in log
