import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from santelake.runtime.tls import ensure_certificates


def test_server_certificate_is_signed_by_the_ca_for_loopback_names(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path, ["localhost"], ["127.0.0.1"])
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificates(files.server_cert.read_bytes())[0]
    ca.public_key().verify(  # type: ignore[union-attr,call-arg]
        server.signature, server.tbs_certificate_bytes, padding.PKCS1v15(), server.signature_hash_algorithm
    )
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert (files.server_key.stat().st_mode & 0o077) == 0
    assert (files.ca_key.stat().st_mode & 0o077) == 0
    # Python's own TLS stack accepts the pair, as clients will.
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    context.load_cert_chain(files.server_cert, files.server_key)


def test_certificates_are_kept_across_runs(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, ["localhost"], ["127.0.0.1"]).server_cert.read_bytes()
    second = ensure_certificates(tmp_path, ["localhost"], ["127.0.0.1"]).server_cert.read_bytes()
    assert first == second
