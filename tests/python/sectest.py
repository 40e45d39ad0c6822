"""Helpers of the security tests: users made with `hourglass user`, a secured server, a test CA
and server certificate (Python `cryptography`), and SigV4 signing of raw requests with botocore."""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

import requests

TIMEOUT_S = 30


def add_user(binary: Path, data_dir: Path, name: str, *grants: tuple[str, str]) -> dict:
    """`hourglass user add NAME --database D --permission P ...`; the credentials printed."""
    args = [str(binary), "user", "add", name, "--data-dir", str(data_dir), "--json"]
    for database, permission in grants:
        args += ["--database", database, "--permission", permission]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def user_cmd(binary: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "user", *args, "--data-dir", str(data_dir), "--json"],
                          capture_output=True, text=True, timeout=60)


def token_headers(creds: dict) -> dict:
    return {"Authorization": f"Token {creds['token']}"}


def write_lp(url: str, db: str, body: str, headers=None, verify=True, **params) -> requests.Response:
    return requests.post(f"{url}/api/v3/write_lp", params={"db": db, **params}, data=body,
                         headers=headers or {}, timeout=TIMEOUT_S, verify=verify)


def query_sql(url: str, db: str, q: str, headers=None, verify=True) -> requests.Response:
    return requests.get(f"{url}/api/v3/query_sql", params={"db": db, "q": q, "format": "json"},
                        headers=headers or {}, timeout=TIMEOUT_S, verify=verify)


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 / localhost signed by it:
    (ca.pem, server.pem, server.key). The CA's key is left beside them as ca.key, for
    `make_client_cert`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hourglass test CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    ca_key_path = directory / "ca.key"
    ca_key_path.write_bytes(ca_key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    ca_key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def make_client_cert(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A client certificate (CN `common_name`) signed by the CA `make_ca_and_cert` left in
    `directory`: (client.pem, client.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{common_name}.pem", directory / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def signed_request(url: str, target: str, body: bytes, key_id: str, secret: str,
                   when: datetime.datetime | None = None) -> tuple[dict, bytes]:
    """Headers of a Timestream request signed with botocore's SigV4Auth (at `when`, default now)."""
    from unittest import mock

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"Timestream_20181101.{target}",
    })
    signer = SigV4Auth(Credentials(key_id, secret), "timestream", "us-east-1")
    if when is None:
        signer.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(req)
    return dict(req.headers.items()), body


def scram_login_sqlstate(host: str, port: int, user: str, password: str, dbname: str) -> str | None:
    """Logs in over the raw PostgreSQL protocol with SCRAM-SHA-256; returns the SQLSTATE of the
    ErrorResponse (None when authentication succeeded). psycopg hides the code of a failed
    connection, so the test speaks the protocol itself."""
    import base64
    import hashlib
    import hmac
    import secrets
    import socket
    import struct

    def read_msg(sock):
        head = b""
        while len(head) < 5:
            chunk = sock.recv(5 - len(head))
            if not chunk:
                raise ConnectionError("closed")
            head += chunk
        kind, length = head[:1], struct.unpack("!I", head[1:])[0]
        body = b""
        while len(body) < length - 4:
            chunk = sock.recv(length - 4 - len(body))
            if not chunk:
                raise ConnectionError("closed")
            body += chunk
        return kind, body

    def error_code(body):
        for field in body.split(b"\0"):
            if field[:1] == b"C":
                return field[1:].decode()
        return "?"

    with socket.create_connection((host, port), timeout=10) as sock:
        params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
        sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
        kind, body = read_msg(sock)
        if kind == b"E":
            return error_code(body)
        assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 10, (kind, body)
        nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        first_bare = f"n=,r={nonce}"
        first = ("n,," + first_bare).encode()
        payload = b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first
        sock.sendall(b"p" + struct.pack("!I", 4 + len(payload)) + payload)
        kind, body = read_msg(sock)
        if kind == b"E":
            return error_code(body)
        server_first = body[4:].decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        final = f"{without_proof},p={proof}".encode()
        sock.sendall(b"p" + struct.pack("!I", 4 + len(final)) + final)
        kind, body = read_msg(sock)
        return error_code(body) if kind == b"E" else None
