#!/usr/bin/env python3
"""Small checks for scripts/test-deploy, one subcommand each. Exit 1 with a message on failure.

    test_support.py access-token TOKEN JWKS_FILE --iss I --aud A --client-id C [--lifetime S]
        Checks an access token's header (typ at+jwt, alg ES256, a kid published in the JWKS)
        and claims; prints the kid.
    test_support.py pem JWKS_FILE KID OUT
        Writes the EC P-256 public key KID of the JWKS as a SubjectPublicKeyInfo PEM file.
    test_support.py replace IN OUT OLD NEW [OLD NEW ...]
        Copies IN to OUT with each OLD text replaced by NEW; every OLD must occur in IN.
    test_support.py fleet-dirs FLEET_YAML
        Prints every kustomize dir fleet.yaml names.
    test_support.py haproxy-status SOCKET BACKEND SERVER
        Prints the server's status (UP, DOWN, MAINT, ...) from HAProxy's stats socket.
"""

import base64
import json
import socket
import sys
import textwrap
import time

# DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point (id-ecPublicKey,
# prime256v1, BIT STRING of 66 bytes: 0x00 unused bits, 0x04, X, Y).
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


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


def pem(args):
    jwks_path, kid, out = args
    key = load_jwks(jwks_path).get(kid)
    if key is None or key.get("kty") != "EC" or key.get("crv") != "P-256":
        fail(f"no P-256 key {kid!r} in the JWKS")
    point = b"\x04" + b64url(key["x"]) + b64url(key["y"])
    body = base64.b64encode(P256_SPKI_PREFIX + point).decode()
    with open(out, "w", encoding="utf-8") as f:
        f.write("-----BEGIN PUBLIC KEY-----\n")
        f.write("\n".join(textwrap.wrap(body, 64)) + "\n")
        f.write("-----END PUBLIC KEY-----\n")


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
    "pem": pem,
    "replace": replace,
    "fleet-dirs": fleet_dirs,
    "haproxy-status": haproxy_status,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: test_support.py {{{','.join(COMMANDS)}}} ...")
    COMMANDS[sys.argv[1]](sys.argv[2:])
