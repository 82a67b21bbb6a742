"""Test certificates made per run with the `openssl` CLI: a CA, a server certificate for
localhost and 127.0.0.1, and a client certificate; all EC P-256, valid for two days."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import helpers


def openssl(*args, cwd: Path):
    r = helpers.run(["openssl", *args], timeout=60, cwd=str(cwd))
    assert r.returncode == 0, f"openssl {' '.join(args)} failed:\n{r.stderr}"


def make_pki(d: Path):
    """ca.pem/key, server.pem/key (localhost, 127.0.0.1), client.pem/key in `d`."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed to make test certificates (apt-get install openssl)",
                    pytrace=False)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=redline test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, ext in [
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "subjectAltName=DNS:test-client\nextendedKeyUsage=clientAuth\n"),
    ]:
        (d / f"{name}.ext").write_text("basicConstraints=CA:FALSE\n" + ext)
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
