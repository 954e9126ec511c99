"""TLS on every service port: 1.3 and 1.2 only, NCSC "good" suites and groups, client certificate required.

Every service of the live cluster is scanned with sslyze (with a valid client
certificate, so the scan gets past the client-certificate check and sees what
the server really offers). Then the refusals are proven with real clients:
a TLS 1.1 ClientHello (sent by nassl's legacy OpenSSL, which still speaks 1.1,
with a 1.2 handshake by the same client as the positive control), a client
without a certificate, a client with a certificate from another CA, and a
plaintext HTTP request on the TLS port.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import ServerScanRequest, ServerScanResult, ServerScanStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_connectivity import TlsVersionEnum
from sslyze.server_setting import (
    ClientAuthenticationCredentials,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
)

from tests.helpers.cluster import Cluster
from tests.interface.conftest import MAIN_CALLER
from ttp.pki import cert_paths, sample_parties

#: TLS 1.2 suites the NCSC rates "good" (IANA names, as sslyze reports them): ECDHE with AEAD.
NCSC_GOOD_TLS12 = {
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
}
#: TLS 1.3 suites the NCSC rates "good" (TLS_AES_128_CCM_SHA256 is only "sufficient").
NCSC_GOOD_TLS13 = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}
#: ECDHE groups the NCSC rates "good".
NCSC_GOOD_GROUPS = {"secp256r1", "secp384r1", "X25519", "X448"}

SCAN_COMMANDS = {
    ScanCommand.SSL_2_0_CIPHER_SUITES,
    ScanCommand.SSL_3_0_CIPHER_SUITES,
    ScanCommand.TLS_1_0_CIPHER_SUITES,
    ScanCommand.TLS_1_1_CIPHER_SUITES,
    ScanCommand.TLS_1_2_CIPHER_SUITES,
    ScanCommand.TLS_1_3_CIPHER_SUITES,
    ScanCommand.ELLIPTIC_CURVES,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.SESSION_RENEGOTIATION,
    ScanCommand.TLS_1_3_EARLY_DATA,
    ScanCommand.TLS_FALLBACK_SCSV,
    ScanCommand.TLS_EXTENDED_MASTER_SECRET,
    ScanCommand.HEARTBLEED,
    ScanCommand.OPENSSL_CCS_INJECTION,
    ScanCommand.ROBOT,
}


def port(cluster: Cluster, service: str) -> int:
    return int(cluster.env[f"TTP_{service.upper()}_PORT"])


def scan(cluster: Cluster, service: str, *, with_certificate: bool) -> ServerScanResult:
    """One sslyze scan of ``service``'s port, optionally presenting a valid client certificate."""
    creds = None
    if with_certificate:
        cert, key = cert_paths(cluster.home / "pki", MAIN_CALLER[service])
        creds = ClientAuthenticationCredentials(certificate_chain_path=cert, key_path=key)
    request = ServerScanRequest(
        server_location=ServerNetworkLocation("127.0.0.1", port(cluster, service)),
        network_configuration=ServerNetworkConfiguration(
            tls_server_name_indication="localhost", tls_client_auth_credentials=creds, network_max_retries=1
        ),
        scan_commands=SCAN_COMMANDS if with_certificate else set(),
    )
    scanner = Scanner(concurrent_server_scans_limit=1, per_server_concurrent_connections_limit=2)
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    return result


def test_sslyze_scan_meets_the_ncsc_guidelines(service: str, live: Cluster) -> None:
    result = scan(live, service, with_certificate=True)
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    assert result.connectivity_result is not None
    assert result.connectivity_result.highest_tls_version_supported == TlsVersionEnum.TLS_1_3
    scans = result.scan_result
    assert scans is not None
    for name in SCAN_COMMANDS:
        attempt = getattr(scans, name.value)
        assert attempt.result is not None, f"{name.value} failed: {attempt.error_reason} {attempt.error_trace}"

    def accepted(attempt_name: str) -> set[str]:
        return {a.cipher_suite.name for a in getattr(scans, attempt_name).result.accepted_cipher_suites}

    for old in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
        assert not accepted(old), f"{service} accepts {old}: {sorted(accepted(old))}"
    tls12, tls13 = accepted("tls_1_2_cipher_suites"), accepted("tls_1_3_cipher_suites")
    assert tls12 and tls12 <= NCSC_GOOD_TLS12, f"TLS 1.2 suites not rated good: {sorted(tls12 - NCSC_GOOD_TLS12)}"
    assert tls13 and tls13 <= NCSC_GOOD_TLS13, f"TLS 1.3 suites not rated good: {sorted(tls13 - NCSC_GOOD_TLS13)}"
    assert scans.elliptic_curves.result is not None
    groups = {c.name for c in scans.elliptic_curves.result.supported_curves or []}
    assert groups and groups <= NCSC_GOOD_GROUPS, f"groups not rated good: {sorted(groups - NCSC_GOOD_GROUPS)}"
    assert scans.tls_compression.result is not None and not scans.tls_compression.result.supports_compression
    reneg = scans.session_renegotiation.result
    assert reneg is not None and reneg.supports_secure_renegotiation
    assert not reneg.is_vulnerable_to_client_renegotiation_dos
    assert scans.tls_1_3_early_data.result is not None and not scans.tls_1_3_early_data.result.supports_early_data
    assert scans.tls_fallback_scsv.result is not None and scans.tls_fallback_scsv.result.supports_fallback_scsv
    assert scans.tls_extended_master_secret.result is not None
    assert scans.tls_extended_master_secret.result.supports_ems_extension
    assert scans.heartbleed.result is not None and not scans.heartbleed.result.is_vulnerable_to_heartbleed
    ccs = scans.openssl_ccs_injection.result
    assert ccs is not None and not ccs.is_vulnerable_to_ccs_injection
    assert scans.robot.result is not None and "NOT_VULNERABLE" in scans.robot.result.robot_result.value


def test_sslyze_without_client_certificate_gets_no_connection(service: str, live: Cluster) -> None:
    result = scan(live, service, with_certificate=False)
    assert result.scan_status == ServerScanStatusEnum.ERROR_NO_CONNECTIVITY, result.connectivity_result


def legacy_handshake(cluster: Cluster, service: str, version: OpenSslVersionEnum) -> None:
    """A full handshake by nassl's legacy OpenSSL (1.0.2) at exactly ``version``, with a valid certificate."""
    cert, key = cert_paths(cluster.home / "pki", MAIN_CALLER[service])
    sock = socket.create_connection(("127.0.0.1", port(cluster, service)), timeout=5)
    client = LegacySslClient(
        underlying_socket=sock, ssl_version=version, ssl_verify=OpenSslVerifyEnum.NONE,
        client_certificate_chain=cert, client_key=key,
    )
    try:
        client.do_handshake()
    finally:
        client.shutdown()
        sock.close()


def test_tls_1_1_client_is_refused(service: str, live: Cluster) -> None:
    legacy_handshake(live, service, OpenSslVersionEnum.TLSV1_2)  # control: this client and certificate work
    with pytest.raises(Exception, match=r"(?i)alert|version|handshake|closed|eof"):
        legacy_handshake(live, service, OpenSslVersionEnum.TLSV1_1)


def _https_get(context: ssl.SSLContext, cluster: Cluster, service: str) -> bytes:
    """Send one HTTP request over TLS with ``context``; returns what came back."""
    with socket.create_connection(("127.0.0.1", port(cluster, service)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        return data


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_without_certificate_is_refused(service: str, live: Cluster, version: ssl.TLSVersion) -> None:
    ctx = ssl.create_default_context(cafile=str(live.home / "pki" / "ca.pem"))
    ctx.minimum_version = ctx.maximum_version = version
    # TLS 1.2 fails in the handshake; TLS 1.3 finishes the client side first and gets the alert on read.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        answer = _https_get(ctx, live, service)
        assert not answer, f"{service} answered a client without certificate: {answer[:80]!r}"
        raise ConnectionError("closed without an answer")  # an empty answer is a refusal too


def test_certificate_from_another_ca_is_refused(service: str, live: Cluster, tmp_path: Path) -> None:
    """A self-made certificate with a valid-looking OIN must not get in: only the TTP CA counts."""
    key = ec.generate_private_key(ec.SECP256R1())
    oin = next(p.oin for p in sample_parties() if p.slug == MAIN_CALLER[service])  # a registered OIN
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, oin)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "c.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.create_default_context(cafile=str(live.home / "pki" / "ca.pem"))
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        answer = _https_get(ctx, live, service)
        assert not answer, f"{service} answered a foreign certificate: {answer[:80]!r}"
        raise ConnectionError("closed without an answer")


def test_no_plaintext_http_on_the_port(service: str, live: Cluster) -> None:
    with socket.create_connection(("127.0.0.1", port(live, service)), timeout=5) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert not data.startswith(b"HTTP/"), f"{service} answered plaintext HTTP: {data[:80]!r}"
    assert b"ok" not in data
