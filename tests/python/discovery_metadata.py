"""authlib's RFC 8414 validator on gha-auth's metadata, fetched at every URL a discovery client
derives from an issuer with a path (RFC 8414 section 3.1 insertion, the OIDC appended form).

Usage: discovery_metadata.py BASE_URL ISSUER
  BASE_URL  where the server listens (http://127.0.0.1:PORT)
  ISSUER    its configured issuer, https with a path (authlib requires https)
Exits non-zero with the reason when a document is missing, differs or does not validate.
"""

import json
import sys
import urllib.parse
import urllib.request

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        if response.status != 200:
            sys.exit(f"{url}: HTTP {response.status}")
        return json.load(response)


def main():
    base, issuer = sys.argv[1].rstrip("/"), sys.argv[2]
    path = urllib.parse.urlparse(issuer).path.rstrip("/")
    if not path:
        sys.exit("the issuer must have a path")
    urls = [
        f"{base}/.well-known/oauth-authorization-server{path}",  # RFC 8414 section 3.1
        f"{base}{path}/.well-known/openid-configuration",  # OIDC Discovery section 4
        f"{base}/.well-known/openid-configuration",  # behind a proxy that strips the path
    ]
    documents = [fetch(url) for url in urls]
    for url, document in zip(urls, documents):
        if document != documents[0]:
            sys.exit(f"{url} serves another document than {urls[0]}")
    metadata = AuthorizationServerMetadata(documents[0])
    metadata.validate()
    if metadata["issuer"] != issuer:
        sys.exit(f"issuer {metadata['issuer']!r}, expected {issuer!r}")
    for member in (
        "scopes_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        if not metadata.get(member):
            sys.exit(f"{member} is missing or empty")
    print(json.dumps({"validated": urls, "response_types_supported": metadata["response_types_supported"]}))


if __name__ == "__main__":
    main()
