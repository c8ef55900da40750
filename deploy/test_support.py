#!/usr/bin/env python3
"""Small checks for scripts/test-deploy, one subcommand each. Exit 1 with a message on failure.

    test_support.py access-token TOKEN JWKS_FILE --iss I --aud A --client-id C [--lifetime S]
        Checks an access token's header (typ at+jwt, alg ES256, a kid published in the JWKS)
        and claims; prints the kid.
    test_support.py forge TOKEN KEY_PEM
        Prints TOKEN with its header and claims kept and its signature replaced by an ES256
        signature of KEY_PEM (a P-256 key of someone else), made with the openssl command.
    test_support.py edge-load EDGE_URL AUTHORITY_URL STOP_FILE OUT_JSON --client ID:SECRET
            --short ID:SECRET --other ID:SECRET --forged TOKEN [--threads N]
        Until STOP_FILE exists: THREADS workers send genuine tokens (client credentials of
        --client, each token used for at most 1 s) to EDGE_URL/HealthCheck/live, and one worker
        sends refused tokens in turn: a genuine token with one signature character changed, the
        --forged token, a token for another audience (--other), and a token of --short (a
        lifetime of a few seconds) once live (expected 200) and again after it expired. Writes
        the counts to OUT_JSON. TLS certificates are not checked (a self-signed test proxy).
    test_support.py edge-report OUT_JSON
        Prints edge-load's counts on one line; exits 1 if a genuine token was refused or failed,
        a refused kind was let through, or a kind was never sent.
    test_support.py tamper TOKEN
        Prints TOKEN with one signature character changed.
    test_support.py replace IN OUT OLD NEW [OLD NEW ...]
        Copies IN to OUT with each OLD text replaced by NEW; every OLD must occur in IN.
    test_support.py fleet-dirs FLEET_YAML
        Prints every kustomize dir fleet.yaml names.
    test_support.py haproxy-status SOCKET BACKEND SERVER
        Prints the server's status (UP, DOWN, MAINT, ...) from HAProxy's stats socket.
"""

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse


def fail(message):
    print(f"test_support: {message}", file=sys.stderr)
    sys.exit(1)


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_jwks(path):
    with open(path, encoding="utf-8") as f:
        return {key["kid"]: key for key in json.load(f)["keys"]}


def access_token(args):
    token, jwks_path = args[0], args[1]
    options = dict(zip(args[2::2], args[3::2]))
    parts = token.split(".")
    if len(parts) != 3:
        fail("not a compact JWS")
    header, claims = json.loads(b64url(parts[0])), json.loads(b64url(parts[1]))
    keys = load_jwks(jwks_path)
    expected_header = {"typ": "at+jwt", "alg": "ES256"}
    for name, value in expected_header.items():
        if header.get(name) != value:
            fail(f"header {name} is {header.get(name)!r}, expected {value!r}")
    if header.get("kid") not in keys:
        fail(f"kid {header.get('kid')!r} is not in the JWKS ({sorted(keys)})")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    checks = {
        "iss": claims.get("iss") == options["--iss"],
        "aud": options["--aud"] in audiences,
        "client_id": claims.get("client_id") == options["--client-id"],
        "sub": bool(claims.get("sub")),
        "jti": bool(claims.get("jti")),
        "exp in the future": claims.get("exp", 0) > time.time(),
        "iat not in the future": claims.get("iat", 1e12) <= time.time() + 5,
    }
    if "--lifetime" in options:
        checks["exp - iat"] = claims.get("exp", 0) - claims.get("iat", 0) == int(options["--lifetime"])
    broken = [name for name, ok in checks.items() if not ok]
    if broken:
        fail(f"claims {broken} wrong in {claims}")
    print(header["kid"])


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_ecdsa_to_raw(der):
    """The 64-byte r || s of a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs)."""
    if der[0] != 0x30:
        fail("not a DER ECDSA signature")
    offset = 3 if der[1] & 0x80 else 2
    values = []
    for _ in range(2):
        if der[offset] != 0x02:
            fail("not a DER ECDSA signature")
        length = der[offset + 1]
        value = der[offset + 2 : offset + 2 + length]
        values.append(value.lstrip(b"\x00").rjust(32, b"\x00"))
        offset += 2 + length
    return values[0] + values[1]


def forge(args):
    token, key = args
    signing_input = token.rsplit(".", 1)[0].encode()
    der = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key],
        input=signing_input,
        capture_output=True,
        check=True,
    ).stdout
    print(signing_input.decode() + "." + b64url_encode(der_ecdsa_to_raw(der)))


class Http:
    """One keep-alive HTTPS connection that reconnects after the server closed it."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.connection = None

    def request(self, method, path, body=None, headers=None):
        """(status, body); raises OSError or http.client.HTTPException on a transport failure."""
        if self.connection is None:
            self.connection = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=15
            )
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            data = response.read()
            if response.will_close:
                self.connection.close()
                self.connection = None
            return response.status, data
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            raise


def mint(http_to_authority, credentials):
    """A fresh access token of client ID:SECRET, or None (the failure is counted by the caller)."""
    basic = base64.b64encode(credentials.encode()).decode()
    status, body = http_to_authority.request(
        "POST",
        "/oauth2/token",
        body="grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    if status != 200:
        return None
    return json.loads(body)["access_token"]


def tamper(token):
    """One signature character changed (not the last: its low bits are padding)."""
    char = token[-10]
    return token[:-10] + ("B" if char == "A" else "A") + token[-9:]


def tamper_command(args):
    print(tamper(args[0]))


def edge_load(args):
    edge_url, authority_url, stop_file, out_file = args[:4]
    options = dict(zip(args[4::2], args[5::2]))
    threads = int(options.get("--threads", "4"))
    lock = threading.Lock()
    counts = {}

    def count(name, n=1):
        with lock:
            counts[name] = counts.get(name, 0) + n

    def stopped():
        return os.path.exists(stop_file)

    def edge_status(edge, token):
        try:
            status, _ = edge.request(
                "GET", "/HealthCheck/live", headers={"Authorization": f"Bearer {token}"}
            )
            return str(status)
        except (OSError, http.client.HTTPException) as e:
            return type(e).__name__

    def new_token(authority, credentials):
        try:
            token = mint(authority, credentials)
        except (OSError, http.client.HTTPException) as e:
            count(f"mint {type(e).__name__}")
            return None
        if token is None:
            count("mint refused")
        else:
            count("minted")
        return token

    def genuine_worker():
        edge, authority = Http(edge_url), Http(authority_url)
        token, minted_at, uses = None, 0.0, 0
        while not stopped():
            if token is None or uses >= 20 or time.monotonic() - minted_at > 1.0:
                token, minted_at, uses = new_token(authority, options["--client"]), time.monotonic(), 0
                if token is None:
                    time.sleep(0.05)
                    continue
            uses += 1
            count(f"genuine {edge_status(edge, token)}")

    def refused_worker():
        edge, authority = Http(edge_url), Http(authority_url)
        expiring = []  # (due, token): short-lived tokens to send again once expired
        while not stopped():
            fresh = new_token(authority, options["--client"])
            if fresh is not None:
                count(f"tampered {edge_status(edge, tamper(fresh))}")
            count(f"forged {edge_status(edge, options['--forged'])}")
            other = new_token(authority, options["--other"])
            if other is not None:
                count(f"other-audience {edge_status(edge, other)}")
            short = new_token(authority, options["--short"])
            if short is not None:
                # Live, it passes: what refuses it later is its exp, nothing else.
                count(f"short-lived live {edge_status(edge, short)}")
                claims = json.loads(b64url(short.split(".")[1]))
                expiring.append((claims["exp"] + 1.5, short))
            while expiring and expiring[0][0] <= time.time():
                count(f"expired {edge_status(edge, expiring.pop(0)[1])}")
            time.sleep(0.1)

    workers = [threading.Thread(target=genuine_worker) for _ in range(threads)]
    workers.append(threading.Thread(target=refused_worker))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(counts, f, sort_keys=True)


def edge_report(args):
    with open(args[0], encoding="utf-8") as f:
        counts = json.load(f)

    def kind(name):
        sent = sum(n for key, n in counts.items() if key.startswith(name + " "))
        return sent, {key[len(name) + 1 :]: n for key, n in counts.items() if key.startswith(name + " ")}

    genuine_sent, genuine = kind("genuine")
    live_sent, live = kind("short-lived live")
    refused_401 = genuine.get("401", 0) + live.get("401", 0)
    failed = {k: n for k, n in genuine.items() if k not in ("200", "401")}
    failed.update({f"live {k}": n for k, n in live.items() if k not in ("200", "401")})
    mint_failures = {k: n for k, n in counts.items() if k.startswith("mint ")}
    parts = [
        f"{genuine_sent + live_sent} genuine tokens sent through the edge, "
        f"{genuine.get('200', 0) + live.get('200', 0)} 200, {refused_401} refused (401), "
        f"{sum(failed.values())} failed {failed or ''}".rstrip()
    ]
    problems = []
    if refused_401:
        problems.append(f"{refused_401} genuine tokens refused")
    if failed:
        problems.append(f"genuine requests failed: {failed}")
    if mint_failures:
        problems.append(f"token requests failed: {mint_failures}")
    refused = []
    for name in ("tampered", "forged", "other-audience", "expired"):
        sent, outcomes = kind(name)
        refused.append(f"{name} {outcomes.get('401', 0)}/{sent}")
        if sent == 0:
            problems.append(f"no {name} token was sent")
        elif outcomes.get("401", 0) != sent:
            problems.append(f"{name} tokens not refused with 401: {outcomes}")
    parts.append("refused (401): " + ", ".join(refused))
    parts.append(f"{counts.get('minted', 0)} tokens minted")
    print("; ".join(parts))
    if problems:
        fail("; ".join(problems))


def replace(args):
    source, out, pairs = args[0], args[1], args[2:]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    for old, new in zip(pairs[::2], pairs[1::2]):
        if old not in text:
            fail(f"{source} no longer contains {old!r}")
        text = text.replace(old, new)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)


def fleet_dirs(args):
    import yaml

    with open(args[0], encoding="utf-8") as f:
        fleet = yaml.safe_load(f)
    dirs = {fleet.get("kustomize", {}).get("dir")}
    dirs |= {t.get("kustomize", {}).get("dir") for t in fleet.get("targetCustomizations", [])}
    for d in sorted(d for d in dirs if d):
        print(d)


def haproxy_status(args):
    path, backend, server = args
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    fields = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(fields, line.split(",")))
        if row.get("pxname") == backend and row.get("svname") == server:
            print(row["status"])
            return
    fail(f"no server {backend}/{server} in HAProxy's stats")


COMMANDS = {
    "access-token": access_token,
    "forge": forge,
    "edge-load": edge_load,
    "edge-report": edge_report,
    "tamper": tamper_command,
    "replace": replace,
    "fleet-dirs": fleet_dirs,
    "haproxy-status": haproxy_status,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: test_support.py {{{','.join(COMMANDS)}}} ...")
    COMMANDS[sys.argv[1]](sys.argv[2:])
