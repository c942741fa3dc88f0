"""Helpers for scripts/bench-gateway (stdlib only).

  presign PREFIX THREADS COUNT SECRET
      Write COUNT signed Binance limit-order bodies, split into THREADS files PREFIX.1 ..
      PREFIX.THREADS (one request per line), so each wrk thread walks its own slice and no request
      is sent twice: the gateway refuses replays, and a replay to the simulator would be a
      duplicate order. Each body is signed now (timestamp = now, recvWindow = 60000) as Binance's
      clients sign: HMAC-SHA256 over query string + body (here all parameters are in the form
      body), hex, appended as the last parameter.
  report RESULTS
      Turn the tab-separated lines the script collected into markdown tables and the ratios.
  journal-summary < VERIFY_JSON
      One line from `keyfence journal verify --format json`.
  fsync DIR
      p50 and p99 in µs of a 200-byte write and an fdatasync to a preallocated file in DIR, as
      the gateway's reservation log does for an order: what durability costs on this disk.
  fsync-ways DIR
      The same durable append made four ways, in turns (so a slow spell of the host hits them
      alike): a write then fdatasync (the gateway's way), a write to a file opened O_DSYNC,
      O_DIRECT|O_DSYNC with a 512-byte aligned block, and O_DIRECT 4 KiB then fdatasync. One
      line each: way, p50 and p99 in µs. Shows whether another way of writing would lower the
      durable journal's floor on this disk.
  selftest
      Check the signing against Binance's published HMAC examples
      (crates/exchange/test_data/binance/vectors.json); the script runs it first.
"""

import hashlib
import hmac
import json
import os
import sys
import time

# A limit buy at half the simulator's reference price (60000): it rests, it never fills.
ORDER = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0001&price=30000.00"


def sign(key, payload):
    """Binance HMAC-SHA256: hex of the MAC over query string + body, as the clients send it."""
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def selftest():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "crates/exchange/test_data/binance/vectors.json")) as f:
        vectors = json.load(f)["hmac"]
    for v in vectors:
        got = sign(v["secret"].encode(), v["query"] + v["body"])
        if got != v["signature"]:
            sys.exit(f"bench_gateway.py: signing disagrees with Binance's example {v['id']}")
    print(f"signing agrees with Binance's {len(vectors)} published HMAC examples")


def presign(prefix, threads, count, secret):
    key = secret.encode()
    # Binance allows 36 characters in a client order id: 8 random hex + thread + index fit.
    run = os.urandom(4).hex()
    per = count // threads
    ts = int(time.time() * 1000)
    for t in range(1, threads + 1):
        lines = []
        for i in range(per):
            q = f"{ORDER}&newClientOrderId=kb{run}-{t}-{i}&recvWindow=60000&timestamp={ts}"
            sig = sign(key, q)
            lines.append(f"{q}&signature={sig}\n")
        with open(f"{prefix}.{t}", "w") as f:
            f.writelines(lines)


COLUMNS = ["req", "dur", "p50", "p99", "err", "exh", "cpu_sim", "cpu_proxy", "cpu_wrk"]
TARGETS = ["sim-ping", "direct", "nginx", "floor", "floor-fsync", "keyfence"]


def rate(r):
    return r["req"] / (r["dur"] / 1e6) if r["dur"] else 0.0


def per_request(r, cpu_ms):
    """CPU µs per request, or a dash when not measured."""
    if cpu_ms is None or not r["req"]:
        return "—"
    return f"{cpu_ms * 1000 / r['req']:.0f}"


def fsync(directory, count=1000):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"\0" * (count * 200), 0)
        os.fsync(fd)
        took = []
        for i in range(count):
            t = time.perf_counter()
            os.pwrite(fd, b"r" * 200, i * 200)
            os.fdatasync(fd)
            took.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    print(f"{took[len(took) // 2]:.0f} {took[len(took) * 99 // 100]:.0f}")


def fsync_ways(directory, count=1000, rounds=4):
    import mmap

    ways = [
        ("write+fdatasync", 0, True, 200),
        ("O_DSYNC write", os.O_DSYNC, False, 200),
        ("O_DIRECT|O_DSYNC 512 B", os.O_DIRECT | os.O_DSYNC, False, 512),
        ("O_DIRECT 4 KiB+fdatasync", os.O_DIRECT, True, 4096),
    ]
    took = {w[0]: [] for w in ways}
    path = os.path.join(directory, "fsync-ways")
    size = count * 4096
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(fd, b"\0" * size, 0)
    os.fsync(fd)
    os.close(fd)
    try:
        for _ in range(rounds):
            for name, flags, sync, block in ways:
                # O_DIRECT needs an aligned buffer: an anonymous map is page-aligned.
                buf = mmap.mmap(-1, block)
                buf.write(b"r" * block)
                fd = os.open(path, os.O_RDWR | flags)
                try:
                    for i in range(count // rounds):
                        t = time.perf_counter()
                        os.pwrite(fd, buf, i * block)
                        if sync:
                            os.fdatasync(fd)
                        took[name].append((time.perf_counter() - t) * 1e6)
                finally:
                    os.close(fd)
                    buf.close()
    finally:
        os.unlink(path)
    for name, _, _, _ in ways:
        t = sorted(took[name])
        print(f"{name}\t{t[len(t) // 2]:.0f}\t{t[len(t) * 99 // 100]:.0f}")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def busy(r):
    """Cores the simulator, the proxy and wrk kept busy together during a run (of 2 here), by
    their own user + system time (kernel threads working for them, such as the disk's, are not
    counted): well below the machine's cores, the run was held back by waiting, not by CPU."""
    parts = [r["cpu_sim"], r["cpu_proxy"], r["cpu_wrk"]]
    if any(x is None for x in parts) or not r["dur"]:
        return "—"
    return f"{sum(parts) * 1000 / r['dur']:.2f}"


def paired(rows, runs):
    """The throughput ratio of every run with both nginx and keyfence (the load run and the
    paired runs after it), and their median: one run's ratio moves too much on a shared
    machine to judge the target by. A run with errors, with replayed requests, or in which
    nginx served nothing is shown but left out of the median."""
    both = [(run, rows[(run, "nginx")], rows[(run, "keyfence")]) for run in runs
            if (run, "nginx") in rows and (run, "keyfence") in rows]
    if not both:
        return []
    out = ["\n**throughput, the load run and the paired load runs**\n",
           "| run | nginx requests/s | keyfence requests/s | keyfence / nginx "
           "| p50 / p99 µs: nginx, keyfence | nginx CPU µs/req | keyfence CPU µs/req "
           "| cores busy: nginx / keyfence run | errors | replays |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    ratios = []
    warnings = []
    for run, n, k in both:
        bad = n["err"] + k["err"] + n["exh"] + k["exh"]
        ratio = rate(k) / rate(n) if rate(n) else None
        if ratio is not None and not bad:
            ratios.append(ratio)
        else:
            warnings.append(f"- WARNING: {run} is left out of the median "
                            "(errors, replayed requests, or no nginx requests)")
        shown = f"{ratio:.3f}" if ratio is not None else "—"
        out.append(f"| {run} | {rate(n):,.0f} | {rate(k):,.0f} | {shown} "
                   f"| {n['p50']:.0f} / {n['p99']:.0f}, {k['p50']:.0f} / {k['p99']:.0f} "
                   f"| {per_request(n, n['cpu_proxy'])} | {per_request(k, k['cpu_proxy'])} "
                   f"| {busy(n)} / {busy(k)} | {int(n['err'] + k['err'])} "
                   f"| {int(n['exh'] + k['exh'])} |")
    out.append("")
    out.extend(warnings)
    if ratios:
        met = sum(r >= 0.5 for r in ratios)
        out.append(f"- throughput keyfence/nginx, median of {len(ratios)} runs: {median(ratios):.3f} "
                   f"(range {min(ratios):.3f}-{max(ratios):.3f}; target ≥ 0.5, met in {met} of {len(ratios)})")
    return out


def report(path):
    """Lines (tab-separated): run, target, requests, duration_us, p50_us, p99_us, errors,
    exhausted, cpu_sim_ms, cpu_proxy_ms, cpu_wrk_ms (proxy: nginx's or keyfence's processes;
    empty for the simulator alone)."""
    rows = {}
    runs = []
    with open(path) as f:
        for line in f:
            run, target, *rest = line.rstrip("\n").split("\t")
            rows[(run, target)] = dict(zip(COLUMNS, [float(x) if x else None for x in rest]))
            if run not in runs:
                runs.append(run)
    out = []
    pairs = [r for r in runs if r.startswith("pair-")]
    for run in runs:
        if run in pairs:
            continue
        out.append(f"\n**{run}**\n")
        out.append("| target | requests/s | p50 µs | p99 µs | errors | sim CPU µs/req | proxy CPU µs/req | wrk CPU µs/req |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for target in TARGETS:
            r = rows.get((run, target))
            if r is None:
                continue
            out.append(
                f"| {target} | {rate(r):,.0f} | {r['p50']:.0f} | {r['p99']:.0f} | {int(r['err'])} "
                f"| {per_request(r, r['cpu_sim'])} | {per_request(r, r['cpu_proxy'])} "
                f"| {per_request(r, r['cpu_wrk'])} |"
            )
        out.append("")
        for target in TARGETS:
            r = rows.get((run, target))
            if r and r["err"]:
                out.append(f"- WARNING: {target} had {int(r['err'])} errors: its figures do not measure what they claim")
            if r and r["exh"]:
                out.append(f"- WARNING: {target} ran out of presigned requests ({int(r['exh'])} replays sent): raise MAX_RPS")
        ping, a, b, fl, ff, c = (rows.get((run, t)) for t in TARGETS)
        if ping and a:
            out.append(
                f"- simulator floor: {per_request(a, a['cpu_sim'])} µs CPU per order "
                f"({per_request(ping, ping['cpu_sim'])} µs for an unsigned ping), p50 {a['p50']:.0f} µs direct"
            )
        if a and b:
            nginx_add = b["p50"] - a["p50"]
            out.append(f"- nginx added p50: {nginx_add:.0f} µs")
            floors = [
                (fl, "floor", "keyfence's HTTP parts, no work"),
                (ff, "floor-fsync", "the floor plus a durable write per request, as the gateway's "
                 "reservation log; nothing else"),
            ]
            for r, name, what in floors:
                if r:
                    add = r["p50"] - a["p50"]
                    ratio = f"{add / nginx_add:.2f}x" if nginx_add > 0 else "n/a"
                    out.append(
                        f"- {name} ({what}) added p50: {add:.0f} µs, {ratio} nginx's; "
                        f"throughput {name}/nginx: {rate(r) / rate(b):.2f}"
                    )
            if c:
                kf_add = c["p50"] - a["p50"]
                ratio = f"{kf_add / nginx_add:.2f}x" if nginx_add > 0 else "n/a (nginx added nothing measurable)"
                out.append(f"- keyfence added p50: {kf_add:.0f} µs; ratio to nginx's: {ratio} (target ≤ 1.5x)")
                if ff and run == "latency":
                    out.append(
                        f"- keyfence's p50 over floor-fsync's (what keyfence adds beyond its parts "
                        f"and the durable write): {c['p50'] - ff['p50']:.0f} µs"
                    )
                out.append(f"- throughput keyfence/nginx: {rate(c) / rate(b):.2f} (target ≥ 0.5)")
            else:
                out.append("- keyfence: not measured (this build has no `keyfence serve`)")
    out.extend(paired(rows, ["load"] + pairs))
    out.append("")
    out.append("errors: non-2xx answers plus socket errors and timeouts (wrk's counts). "
               "CPU: user + system time of each process during the run, per request.")
    print("\n".join(out))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "presign":
        presign(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "report":
        report(sys.argv[2])
    elif cmd == "selftest":
        selftest()
    elif cmd == "fsync":
        fsync(sys.argv[2])
    elif cmd == "fsync-ways":
        fsync_ways(sys.argv[2])
    elif cmd == "journal-summary":
        r = json.load(sys.stdin)
        print(f"`keyfence journal verify` passed: {r['entries']} entries, signed checkpoints: {r['checkpoints']}")
    else:
        sys.exit(f"unknown command `{cmd}`")
