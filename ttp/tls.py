"""TLS contexts for servers and service clients, hardened per the NCSC TLS guidelines.

TLS 1.3 and 1.2 only; for 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305
(the NCSC "good" suites); client certificates required and verified against
the TTP CA on every port.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ttp.pki import cert_paths, server_paths

#: TLS 1.2 suites rated "good" by the NCSC (ECDHE, AEAD). TLS 1.3 suites are all good.
NCSC_GOOD_TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ]
)


#: The key-exchange group. The NCSC rates ECDHE over secp384r1, secp256r1, x448 and x25519 "good";
#: OpenSSL's default list also offers secp521r1 and, in TLS 1.3, the ffdhe groups (ffdhe2048 is
#: "phase out"). Python 3.11 can set one group only; secp256r1 is the group every TLS 1.3 peer
#: must implement (RFC 8446, 9.1), so restricting to it costs no interoperability.
NCSC_GOOD_GROUP = "prime256v1"


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers(NCSC_GOOD_TLS12_CIPHERS)
    ctx.set_ecdh_curve(NCSC_GOOD_GROUP)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE


def server_context(pki_dir: Path, service: str) -> ssl.SSLContext:
    """Server side: present the service's certificate, require a client certificate."""
    cert, key = server_paths(pki_dir, service)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(pki_dir / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(pki_dir: Path, slug: str) -> ssl.SSLContext:
    """Client side: verify the server against the TTP CA, present ``slug``'s certificate."""
    cert, key = cert_paths(pki_dir, slug)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki_dir / "ca.pem"))
    _harden(ctx)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_context_from_files(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Client context from explicit files (a provider's own PKIoverheid certificate)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    _harden(ctx)
    ctx.load_cert_chain(cert, key)
    return ctx


def browser_server_context(pki_dir: Path, service: str) -> ssl.SSLContext:
    """Server side for people's browsers (the portal): present the certificate, ask for none.

    People sign in with OpenID Connect, not with a client certificate, so this context
    deliberately sets ``CERT_NONE``; the hardening is the same as on every API port.
    """
    cert, key = server_paths(pki_dir, service)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_auth_context(ca: Path) -> ssl.SSLContext:
    """Client side without a certificate of its own (the portal calling its OpenID provider)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    _harden(ctx)
    return ctx
