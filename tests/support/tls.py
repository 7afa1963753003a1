"""Throw-away TLS for tests: a CA made at test time and a certificate it signed for
127.0.0.1 and localhost, which clients trust the way an operator trusts a private CA
(``REQUESTS_CA_BUNDLE``, ``ssl_ca_certs``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    """A CA (what clients trust) and the server certificate it signed."""

    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA and a certificate for 127.0.0.1 and localhost, made with ``openssl``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_extensions = [
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    ]
    make_ca = ["req", "-x509", *new_key, "-keyout", ca_key, "-out", ca, "-days", "2"]
    make_csr = ["req", *new_key, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"]
    sign = ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "2"]
    for args in (
        [*make_ca, "-subj", "/CN=AgentLink test CA", *ca_extensions],
        make_csr,
        [*sign, "-days", "2", "-out", cert, "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return Certificates(ca=ca, cert=cert, key=key)
