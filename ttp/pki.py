"""Development PKI: a TTP CA, server certificates and party client certificates.

Production uses PKIoverheid certificates; this module mimics their shape so the
code path is the same: the organisation identifier (OIN, 20 digits) sits in the
subject ``serialNumber`` attribute, and every service verifies peers against one
CA bundle. It also writes the party registry and the audit log's signing key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ttp.private_files import private_dir, write_private
from ttp.settings import SERVICES

VALIDITY = dt.timedelta(days=825)

#: The web portal: a TLS server for browsers (``servers/portal.pem``) and, as the ``service`` party
#: ``service-portal``, an mTLS client of the services that relays for a signed-in person's party.
PORTAL = "portal"
PORTAL_SLUG = f"service-{PORTAL}"
#: The embedded OpenID provider people sign in at in development (``ttp up``); a TLS server only.
DEV_IDP = "dev-idp"


@dataclass(frozen=True)
class PartySpec:
    """One organisation that gets a client certificate."""

    slug: str
    oin: str
    role: str
    name: str
    codes: dict[str, str] = field(default_factory=dict)


def _oin(kind: int, number: int) -> str:
    """A 20-digit dev OIN: ``00000099`` (dev prefix), a 2-digit kind, a 10-digit number."""
    return f"00000099{kind:02d}{number:010d}"


SAMPLE_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("98000001", "Jeugdzorg De Horizon"),
    ("98000002", "Stichting Kompas Jeugdhulp"),
    ("98000003", "Ambulant Team Noord"),
    ("98000004", "Pleegzorg Samen"),
)

SAMPLE_GEMEENTEN: tuple[tuple[str, str], ...] = (
    ("GM0363", "Amsterdam"),
    ("GM0599", "Rotterdam"),
    ("GM0344", "Utrecht"),
    ("GM0518", "'s-Gravenhage"),
    ("GM0014", "Groningen"),
)


def sample_parties() -> list[PartySpec]:
    """The parties of the development registry."""
    parties: list[PartySpec] = []
    for i, (agb, name) in enumerate(SAMPLE_PROVIDERS, start=1):
        parties.append(PartySpec(f"provider-{agb}", _oin(10, i), "provider", name, {"agb": agb}))
    for i, (code, name) in enumerate(SAMPLE_GEMEENTEN, start=1):
        parties.append(
            PartySpec(f"gemeente-{code}", _oin(20, i), "gemeente", f"Gemeente {name}", {"gemeenteCode": code})
        )
    parties.append(PartySpec("rijk", _oin(30, 1), "rijk", "Ministerie van VWS"))
    parties.append(PartySpec("auditor", _oin(40, 1), "auditor", "Auditdienst Rijk"))
    # The portal has only a client certificate towards the services: it relays for signed-in people.
    for i, service in enumerate(SERVICES, start=1):
        parties.append(PartySpec(f"service-{service}", _oin(50, i), "service", f"TTP {service}",
                                 {"service": service}))
    parties.append(PartySpec(PORTAL_SLUG, _oin(50, len(SERVICES) + 1), "service", "TTP portal",
                             {"service": "portal"}))
    parties.append(PartySpec("operator", _oin(60, 1), "operator", "TTP beheer (monitoring)"))
    return parties


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    # Not secret, but part of the state directory, which is owner-only as a whole (ttp.private_files).
    write_private(path, cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, oin: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if oin:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server_names: list[str] | None = None,
    client: bool = True,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        sans: list[x509.GeneralName] = []
        for n in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def cert_paths(pki_dir: Path, slug: str) -> tuple[Path, Path]:
    """Certificate and key file of a client party."""
    return pki_dir / "clients" / f"{slug}.pem", pki_dir / "clients" / f"{slug}.key"


def server_paths(pki_dir: Path, service: str) -> tuple[Path, Path]:
    """Certificate and key file a service presents as a TLS server."""
    return pki_dir / "servers" / f"{service}.pem", pki_dir / "servers" / f"{service}.key"


def _load_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the dev CA key is not an EC key")
    return cert, key


def issue_client_certificate(pki_dir: Path, slug: str, oin: str, name: str) -> tuple[Path, Path]:
    """Issue a client certificate from the dev CA for ``oin``, registered or not.

    For a party added to the registry by hand, and for tests that need a
    certificate the CA signed but the registry does not know.
    """
    ca_cert, ca_key = _load_ca(pki_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(_name(name, oin), key.public_key(), ca_cert, ca_key)
    cert_path, key_path = cert_paths(pki_dir, slug)
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path


def init_pki(pki_dir: Path, *, hostnames: list[str] | None = None, force: bool = False) -> list[PartySpec]:
    """Create the dev CA, server and client certificates, registry and log key.

    Idempotent unless ``force``: an existing CA is kept so certificates already
    handed out stay valid; a party added to the dev registry since (the
    portal, the operator) gets its certificate and the registry is rewritten.
    """
    ca_cert_path, ca_key_path = pki_dir / "ca.pem", pki_dir / "ca.key"
    parties = sample_parties()
    if ca_cert_path.exists() and not force:
        for party in parties:
            if not cert_paths(pki_dir, party.slug)[0].exists():
                issue_client_certificate(pki_dir, party.slug, party.oin, party.name)
        write_registry(pki_dir / "parties.yaml", parties)
        return parties
    hostnames = hostnames or ["localhost", "127.0.0.1", "::1"]
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Outcome TTP Dev CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(ca_key_path, ca_key)
    _write_cert(ca_cert_path, ca_cert)

    by_slug = {p.slug: p for p in parties}
    for service in (*SERVICES, PORTAL):
        key = ec.generate_private_key(ec.SECP256R1())
        oin = by_slug[f"service-{service}"].oin
        cert = _issue(
            _name(f"ttp-{service}", oin), key.public_key(), ca_cert, ca_key,
            server_names=[*hostnames, f"ttp-{service}", service],
        )
        cert_path, key_path = server_paths(pki_dir, service)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
    idp_key = ec.generate_private_key(ec.SECP256R1())
    idp_cert = _issue(_name("ttp-dev-idp"), idp_key.public_key(), ca_cert, ca_key,
                      server_names=[*hostnames, DEV_IDP], client=False)
    _write_key(server_paths(pki_dir, DEV_IDP)[1], idp_key)
    _write_cert(server_paths(pki_dir, DEV_IDP)[0], idp_cert)

    for party in parties:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(_name(party.name, party.oin), key.public_key(), ca_cert, ca_key)
        cert_path, key_path = cert_paths(pki_dir, party.slug)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)

    log_key = ed25519.Ed25519PrivateKey.generate()
    _write_key(pki_dir / "audit-log.key", log_key)
    write_private(pki_dir / "audit-log.pub", log_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))
    write_registry(pki_dir / "parties.yaml", parties)
    return parties


def write_registry(path: Path, parties: list[PartySpec]) -> None:
    """Write the party registry YAML that services load into their ``parties`` table."""
    doc: dict[str, Any] = {
        "parties": [
            {"oin": p.oin, "role": p.role, "name": p.name, "slug": p.slug, **p.codes} for p in parties
        ]
    }
    write_private(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8"))


def ensure_hmac_key(key_dir: Path, version: int = 1) -> Path:
    """Create ``v<version>.key`` with 32 random bytes if no key exists yet."""
    private_dir(key_dir)
    os.chmod(key_dir, 0o700)
    path = key_dir / f"v{version}.key"
    if not any(key_dir.glob("v*.key")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path
