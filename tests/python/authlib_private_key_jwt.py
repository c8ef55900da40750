"""authlib's private_key_jwt, with its defaults, against a running gha-auth authority.

Run by the e2e test `python::authlib_private_key_jwt_with_its_defaults` (tests/tests/e2e/python.rs):

    python authlib_private_key_jwt.py keygen DIR
        writes DIR/private.json (an RSA key, authlib's default RS256) and DIR/public.json
    python authlib_private_key_jwt.py run ISSUER CLIENT_ID DIR
        prints one JSON object: what each step answered

authlib's defaults are the point: assertions valid for one hour, addressed to the URL of the
endpoint being called (the token, introspection or revocation endpoint).
"""

import json
import sys
from pathlib import Path

import requests

from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey
from authlib.oauth2.rfc7523 import PrivateKeyJWT


def keygen(directory):
    key = JsonWebKey.generate_key("RSA", 2048, is_private=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "private.json").write_text(json.dumps(key.as_dict(is_private=True)))
    (directory / "public.json").write_text(json.dumps(key.as_dict(is_private=False)))


def session_for(client_id, private_key):
    session = OAuth2Session(
        client_id,
        private_key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
    )
    # No endpoint given: authlib addresses each assertion to the URL it calls.
    session.register_client_auth_method(PrivateKeyJWT())
    return session


def run(issuer, client_id, directory):
    private_key = json.loads((directory / "private.json").read_text())
    metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
    session = session_for(client_id, private_key)
    result = {}

    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    result["token_type"] = token.get("token_type")
    access_token = token["access_token"]

    introspected = session.introspect_token(
        metadata["introspection_endpoint"], token=access_token
    )
    result["introspect_status"] = introspected.status_code
    result["introspect_active"] = introspected.json().get("active")
    result["introspect_client_id"] = introspected.json().get("client_id")

    revoked = session.revoke_token(metadata["revocation_endpoint"], token=access_token)
    result["revoke_status"] = revoked.status_code

    again = session.introspect_token(metadata["introspection_endpoint"], token=access_token)
    result["after_revoke_active"] = again.json().get("active")

    # A mistake the client can fix is named in error_description: here an assertion that
    # lives longer than the server accepts (a day).
    long_lived = session_for(client_id, private_key)
    long_lived.register_client_auth_method(PrivateKeyJWT(claims={"exp": _in_a_day()}))
    refused = long_lived.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials"},
        auth=long_lived.client_auth("private_key_jwt"),
        withhold_token=True,
    )
    result["too_long_status"] = refused.status_code
    result["too_long_error"] = refused.json().get("error")
    result["too_long_description"] = refused.json().get("error_description")
    print(json.dumps(result))


def _in_a_day():
    import time

    return int(time.time()) + 86400


def main():
    command, *args = sys.argv[1:]
    if command == "keygen":
        keygen(Path(args[0]))
    elif command == "run":
        run(args[0].rstrip("/"), args[1], Path(args[2]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
