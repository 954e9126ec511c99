"""The embedded OpenID provider of ``ttp up``: configure and start ``dev_idp/provider.mjs``.

It is panva's ``oidc-provider`` (npm, OpenID Certified), run by node from the repository's
``node_modules``, not a sign-in shortcut inside the portal: the portal talks to it exactly as
to an eHerkenning broker (discovery, authorization code with PKCE, ID token, userinfo).
One account per sample party (the user name is the party's slug); the passwords are random,
made once and kept in ``<home>/portal/dev-idp.json`` (mode 0600), and ``ttp up`` prints them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from services.portal.session import PEOPLE_ROLES
from services.portal.settings import PortalConfig, read_or_create_secret
from ttp.pki import DEV_IDP, server_paths
from ttp.registry import Registry

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "dev_idp" / "provider.mjs"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signing_jwk() -> dict[str, str]:
    """An RS256 signing key for ID tokens, as a private JWK (RFC 7518 6.3)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_numbers()
    pub = priv.public_numbers
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": secrets.token_hex(8),
            "n": _b64(pub.n), "e": _b64(pub.e), "d": _b64(priv.d), "p": _b64(priv.p), "q": _b64(priv.q),
            "dp": _b64(priv.dmp1), "dq": _b64(priv.dmq1), "qi": _b64(priv.iqmp)}


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)


def write_config(config: PortalConfig) -> Path:
    """Write (or refresh) the provider's config; keys, secrets and passwords are kept once made."""
    path = config.state_dir / "dev-idp.json"
    old: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    old_passwords = {a["username"]: a["password"] for a in old.get("accounts", [])}
    registry = Registry.from_yaml(config.settings.registry)
    accounts = [
        {"username": p.slug, "password": old_passwords.get(p.slug) or secrets.token_urlsafe(12),
         "sub": f"dev-{p.slug}", "name": f"Medewerker {p.name}", "oin": p.oin, "organisation": p.name}
        for p in registry.all() if p.role in PEOPLE_ROLES
    ]
    cert, key = server_paths(config.settings.pki, DEV_IDP)
    doc = {
        "issuer": config.issuer,
        "host": config.settings.host,
        "port": config.portal.dev_idp_port,
        "tlsCert": str(cert.resolve()),
        "tlsKey": str(key.resolve()),
        "cookieKeys": old.get("cookieKeys") or [secrets.token_urlsafe(32)],
        "jwks": old.get("jwks") or {"keys": [_signing_jwk()]},
        "clients": [{
            "client_id": config.portal.oidc_client_id,
            "client_secret": read_or_create_secret(config.client_secret_file),
            "redirect_uris": [f"{config.public_url}/inloggen/terug"],
            "post_logout_redirect_uris": [f"{config.public_url}/uitgelogd"],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }],
        "accounts": accounts,
    }
    _write_private(path, doc)
    return path


def accounts(config: PortalConfig) -> list[dict[str, str]]:
    """The sign-in accounts (user name, password, organisation) written by ``write_config``."""
    doc = json.loads((config.state_dir / "dev-idp.json").read_text(encoding="utf-8"))
    return [{"username": a["username"], "password": a["password"], "organisation": a["organisation"]}
            for a in doc["accounts"]]


def node_command(config_path: Path) -> list[str]:
    """How to run the provider; fails with a clear message when node or the package is missing."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("The embedded OpenID provider needs node (Debian package nodejs).")
    if not (REPO / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(f"oidc-provider is not installed: run `npm ci` in {REPO}.")
    return [node, str(SCRIPT), str(config_path)]


def start(config: PortalConfig, log_file: Path) -> subprocess.Popen[bytes]:
    """Start the provider as a child process writing to ``log_file``."""
    command = node_command(write_config(config))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
