"""HTTPS: hearthd with ssl_cert_file/ssl_key_file, reached by the openstack and
cinder CLIs and openstacksdk through --os-cacert (a CA made here, a certificate for
127.0.0.1 signed by it). Without the CA the clients refuse the certificate."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest

from support import FIXTURES_DIR, WAIT_TIMEOUT, Clients, wait_for


def make_ca_and_cert(d: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hearth test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = d / "ca.pem", d / "cert.pem", d / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


@pytest.fixture
def tls_daemon(hearthd_factory, tmp_path):
    ca, cert, key = make_ca_and_cert(tmp_path)
    cfg = tmp_path / "tls.toml"
    cfg.write_text(f'ssl_cert_file = "{cert}"\nssl_key_file = "{key}"\n'
                   + (FIXTURES_DIR / "file.toml").read_text())
    d = hearthd_factory(config=cfg)
    assert d.base_url.startswith("https://127.0.0.1:"), d.base_url
    return d, ca


def test_openstack_and_cinder_cli_over_https(tls_daemon, tmp_path):
    d, ca = tls_daemon
    c = Clients(d, tmp_path / "home")
    v = c.openstack_json("--os-cacert", str(ca), "volume", "create", "--size", "1", "tls1")
    wait_for(lambda: c.openstack_json("--os-cacert", str(ca), "volume", "show", v["id"])["status"],
             lambda s: s == "available", "tls1 available", bad=lambda s: s == "error")
    listed = c.cinder("--os-cacert", str(ca), "list").stdout
    assert v["id"] in listed, listed
    # Without the CA, the certificate is refused by the client.
    r = c.openstack("volume", "list", expect_fail=True)
    assert "CERTIFICATE_VERIFY_FAILED" in r.stderr or "certificate verify failed" in r.stderr, \
        r.report("no certificate error")


def test_openstacksdk_over_https(tls_daemon):
    import openstack

    d, ca = tls_daemon
    conn = openstack.connect(auth_type="none", auth={"endpoint": d.endpoint},
                             block_storage_endpoint_override=d.endpoint, cacert=str(ca),
                             load_yaml_config=False, load_envvars=False)
    v = conn.block_storage.create_volume(name="tls2", size=1)
    v = conn.block_storage.wait_for_status(v, status="available", failures=["error"],
                                           interval=0.5, wait=WAIT_TIMEOUT)
    assert v.name == "tls2"
    conn.block_storage.delete_volume(v)
