"""Continuous load for bench/chaos.sh, and the per-phase report.

    python3 bench/chaos_load.py load URL CLIENT SECRET OUT_FILE STOP_FILE [THREADS]
    python3 bench/chaos_load.py report OUT_FILE PHASES_FILE
    python3 bench/chaos_load.py watch-jwks OUT_FILE STOP_FILE URL...
    python3 bench/chaos_load.py visible WATCH_FILE KID SINCE

`load` sends, from THREADS threads until STOP_FILE exists, client_credentials token requests
(9 in 10) and revocation-feed reads (1 in 10, a request that needs the database) through URL,
and appends one line per request to OUT_FILE: start time, kind, outcome (HTTP status or the
exception's class), latency. `report` splits them by the phases in PHASES_FILE (lines
"<start> <end> <name>", Unix seconds) and prints per phase: requests, failures by kind and
outcome, p99, the slowest 503, and the time from the phase's end to the last failure.
"""

import datetime
import sys
import threading
import time

import requests


def load(url, client, secret, out_file, stop_file, threads):
    lock = threading.Lock()
    out = open(out_file, "a", buffering=1)

    def worker(index):
        session = requests.Session()
        n = index
        while True:
            try:
                open(stop_file).close()
                return
            except FileNotFoundError:
                pass
            n += 1
            kind = "feed" if n % 10 == 0 else "token"
            start = time.time()
            try:
                if kind == "token":
                    response = session.post(
                        url + "/oauth2/token",
                        data={"grant_type": "client_credentials"},
                        auth=(client, secret),
                        timeout=15,
                    )
                else:
                    response = session.get(url + "/v1/revocations", timeout=15)
                outcome = str(response.status_code)
            except requests.RequestException as e:
                outcome = type(e).__name__
                session = requests.Session()
                time.sleep(0.05)
            latency = time.time() - start
            with lock:
                out.write(f"{start:.3f} {kind} {outcome} {latency:.4f}\n")

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def p99(values):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def report(out_file, phases_file):
    rows = []
    for line in open(out_file):
        start, kind, outcome, latency = line.split()
        rows.append((float(start), kind, outcome, float(latency)))
    phases = []
    for line in open(phases_file):
        start, end, name = line.split(maxsplit=2)
        phases.append((float(start), float(end), name.strip()))
    ok = {"token": {"200"}, "feed": {"200", "304"}}
    for start, end, name in phases:
        mine = [r for r in rows if start <= r[0] < end]
        failures = {}
        for _, kind, outcome, _ in mine:
            if outcome not in ok[kind]:
                failures[f"{kind} {outcome}"] = failures.get(f"{kind} {outcome}", 0) + 1
        tokens = [r for r in mine if r[1] == "token"]
        token_failed = sum(1 for r in tokens if r[2] != "200")
        slowest_503 = max((r[3] for r in mine if r[2] == "503"), default=None)
        # Recovery: from the fault's end to the start of the last failed request of the phase.
        last_failure = max((r[0] for r in mine if r[2] not in ok[r[1]]), default=None)
        recovered = "no failures" if last_failure is None else f"{max(0.0, last_failure - start):.1f}s after the phase began"
        print(f"== {name}")
        print(f"   requests {len(mine)} (token {len(tokens)}, token failed {token_failed}); "
              f"p99 {p99([r[3] for r in mine]) * 1000:.0f} ms")
        print(f"   failures by kind: {failures or 'none'}")
        for at, kind, outcome, latency in sorted(r for r in tokens if r[2] != "200"):
            print(f"   failed token request at +{at - start:.2f}s: {outcome} after {latency * 1000:.0f} ms")
        if slowest_503 is not None:
            print(f"   slowest 503: {slowest_503 * 1000:.0f} ms")
        print(f"   last failure: {recovered}")


def watch_jwks(out_file, stop_file, urls):
    lock = threading.Lock()
    out = open(out_file, "a", buffering=1)

    def watcher(index, url):
        session = requests.Session()
        last = None
        while True:
            try:
                open(stop_file).close()
                return
            except FileNotFoundError:
                pass
            try:
                keys = session.get(url + "/.well-known/jwks.json", timeout=2).json()["keys"]
                kids = ",".join(sorted(k["kid"] for k in keys))
            except (requests.RequestException, ValueError, KeyError):
                kids = "unreachable"
                session = requests.Session()
            if kids != last:
                with lock:
                    out.write(f"{time.time():.3f} {index} {kids}\n")
                last = kids
            time.sleep(0.02)

    workers = [threading.Thread(target=watcher, args=(i, u)) for i, u in enumerate(urls)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def visible(watch_file, kid, since):
    since = datetime.datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
    first = {}
    for line in open(watch_file):
        at, index, kids = line.split()
        if kids == kid and float(at) >= since and index not in first:
            first[index] = float(at) - since
    print(" ".join(f"replica{i}={first[i]:.2f}s" if i in first else f"replica{i}=never"
                   for i in sorted(first.keys() | {"0", "1"})))


if __name__ == "__main__":
    if sys.argv[1] == "load":
        threads = int(sys.argv[7]) if len(sys.argv) > 7 else 8
        load(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], threads)
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "watch-jwks":
        watch_jwks(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == "visible":
        visible(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
