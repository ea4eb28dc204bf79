"""HTTPS to the address checked: the connection is pinned to the resolved address while the
TLS handshake (SNI) and the certificate check use the URL's host name."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from events.relay import relay_pending
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import deliveries, register
from webhooks.models import DeliveryState

HOST = "hooks.pinned.test"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, host: str) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for ``host`` it signed: (CA file, certificate, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Test CA"))
        .issuer_name(_name("Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture
def tls_receiver(tmp_path, settings, monkeypatch) -> Iterator[Receiver]:
    """A receiver serving HTTPS with a certificate for ``HOST`` only, which the stand-in
    DNS resolves to loopback; the app trusts the test CA (``WEBHOOK_CA_BUNDLE``)."""
    ca_file, cert_file, key_file = make_certificates(tmp_path, HOST)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    settings.WEBHOOK_CA_BUNDLE = str(ca_file)
    settings.WEBHOOK_ALLOW_HTTP = False
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real("127.0.0.1" if host == HOST else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)  # a stand-in for the DNS
    server = Receiver(tls=context)
    try:
        yield server
    finally:
        server.stop()


def test_https_goes_to_the_checked_address_with_the_host_name_in_sni_and_the_check(
    api, tls_receiver
):
    register(api, tls_receiver, host=HOST)
    api.post("/api/tasks/", {"title": "Over TLS"}, format="json")
    relay_pending()

    [request] = tls_receiver.requests
    assert request.verified
    assert request.headers["host"] == f"{HOST}:{tls_receiver.port}"


def test_a_certificate_for_another_name_fails_the_attempt(api, tls_receiver):
    """By its address the receiver's certificate does not match: the check is on the name."""
    hook = register(api, tls_receiver, host="127.0.0.1")
    api.post("/api/tasks/", {"title": "Wrong name"}, format="json")
    relay_pending()

    assert tls_receiver.requests == []
    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.PENDING  # a connection failure: retried
    assert "certificate" in delivery.last_error.lower()
