"""A tier link over TLS (``upper_broker = "mqtts://…"``): the town checks the county broker's
certificate against the CA it was given and the broker's name, and sends its cases; a town
given another CA never connects, and goes on working alone."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.config import HallConfig, parse_config
from controller.core.commands import SetMatters
from controller.tier_link import TIERS
from tests.bushelp import HallServer, free_port
from tests.test_tiers import DESK, U15, admit, cases_from, config, has, send_up, until

pytestmark = pytest.mark.slow


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(folder: Path, cn: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{cn}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def server_cert(folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[Path, Path]:
    """The county broker's certificate, for the address 127.0.0.1, signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("county-broker")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / "broker.pem", folder / "broker.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def town(port: int, ca: Path) -> HallConfig:
    data = config("town", "town").model_dump(mode="json")
    data["tier"] = {"level": "town", "upper": "county", "upper_broker": f"mqtts://127.0.0.1:{port}",
                    "upper_ca": str(ca)}
    return parse_config(data, "<town>")


async def test_a_town_sends_its_cases_over_tls_and_only_to_the_broker_its_ca_signed(tmp_path, caplog):
    pki = tmp_path / "pki"
    pki.mkdir()
    ca, ca_key, ca_cert = make_ca(pki, "county-ca")
    stranger, _, _ = make_ca(pki, "another-ca")
    cert, key = server_cert(pki, ca_key, ca_cert)
    port = free_port()
    plain = config("county", "county", lower="town")
    county = HallServer(plain.model_copy(update={"bus": plain.bus.model_copy(update={
        "tls_listen": f"127.0.0.1:{port}", "tls_cert": str(cert), "tls_key": str(key)})}),
        tmp_path / "county", None, None)
    await county.start()
    try:
        await admit(county, "town", tmp_path / "town")
        trusting = HallServer(town(port, ca), tmp_path / "town", None, None)
        await trusting.start()
        try:
            for hall in (county, trusting):
                await hall.engine.execute(SetMatters(matters=[{**U15, "form": "upper"}]), DESK)
            number = await send_up(trusting, "张三丰")
            await until(lambda: has(county, "town", 1), 20)
            assert list(await cases_from(county, "town")) == [number]
        finally:
            await trusting.stop()

        await admit(county, "town", tmp_path / "wrong")          # the right password, the wrong CA
        wrong = HallServer(town(port, stranger), tmp_path / "wrong", None, None)
        await wrong.start()
        try:
            await wrong.engine.execute(SetMatters(matters=[{**U15, "form": "upper"}]), DESK)
            caplog.set_level(logging.INFO, logger="yimen.mqtt")
            await send_up(wrong, "李四甲")                          # it works alone meanwhile
            for _ in range(100):
                if "certificate verify failed" in caplog.text.lower():
                    break
                await asyncio.sleep(0.1)
            assert "yimen-tier-town" in caplog.text and "certificate verify failed" in caplog.text.lower()
            assert not wrong.runner.app[TIERS].links[0].connected.is_set()
            assert len(await cases_from(county, "town")) == 1
        finally:
            await wrong.stop()
    finally:
        await county.stop()


def test_a_missing_ca_file_is_said_when_the_hall_starts(tmp_path):
    from controller.core.errors import YimenError

    async def start() -> None:
        hall = HallServer(town(free_port(), tmp_path / "none.pem"), tmp_path / "town", None, None)
        try:
            await hall.start()
        finally:
            await hall.stop()

    with pytest.raises(YimenError, match="none.pem"):
        asyncio.run(start())
