"""Certificates for wss: a self-signed CA and a server certificate it signs.

The server certificate is for localhost (SAN DNS localhost, IP 127.0.0.1, IP ::1) plus the
--host when that is another name or address. Files written to the directory:

    ca.pem           the CA certificate: what a client trusts (the path printed as "ca")
    ca-key.pem       the CA's private key (mode 0600)
    server.pem       the server certificate
    server-key.pem   its private key (mode 0600)

A CA already in the directory (ca.pem + ca-key.pem that match and stay valid for at least
another day) is reused, so a developer can trust it once with --certdir; the server certificate
is issued afresh on every start. Keys are ECDSA P-256, signatures SHA-256.

The repository's test peers (Tests/Peers) issue their certificates here too, with `issue`: one
for localhost and one valid only for another name, signed by the same CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "Utilbot dev gateway"
CA_DAYS = 825
SERVER_DAYS = 397
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertificatePaths:
    ca: Path
    ca_key: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _load_ca(
    paths: CertificatePaths, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(paths.ca.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_after_utc < now + datetime.timedelta(days=1):
        return None
    return cert, key


def _new_ca(paths: CertificatePaths, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Utilbot dev gateway CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key, paths.ca_key)
    paths.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def make_certificates(directory: Path, extra_hosts: tuple[str, ...] = ()) -> CertificatePaths:
    """Writes (or reuses, for the CA) the files in `directory`, which must exist."""
    hosts = list(LOCAL_NAMES)
    for host in extra_hosts:
        if host and host not in hosts:
            hosts.append(host)
    return issue(directory, "server", hosts)


def issue(directory: Path, label: str, hosts: list[str]) -> CertificatePaths:
    """A certificate for `hosts` (names or addresses; the first is its common name) in
    `directory`/`label`.pem and `label`-key.pem, signed by the directory's CA (made if needed)."""
    directory = directory.resolve()
    paths = CertificatePaths(
        ca=directory / "ca.pem",
        ca_key=directory / "ca-key.pem",
        cert=directory / f"{label}.pem",
        key=directory / f"{label}-key.pem",
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert, ca_key = _load_ca(paths, now) or _new_ca(paths, now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(min(now + datetime.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_alt_name(host) for host in hosts]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key, paths.key)
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


def server_context(paths: CertificatePaths) -> ssl.SSLContext:
    """TLS 1.2 or newer, serving the server certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.cert, paths.key)
    return context
