"""The secured listener's pieces without a broker: the certificates, the properties file, and
the one line a refusal becomes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from confluent_kafka import KafkaError

from pizzashop.config import load_settings, read_properties
from pizzashop.kafka.reaching import refusal
from pizzashop.kafka.secure import SecuredListener

ADDRESS = "127.0.0.1:9192"
WRONG_PASSWORD = (
    "sasl_ssl://127.0.0.1:9192/bootstrap: SASL authentication error: Authentication failed: "
    "Invalid username or password (after 302ms in state AUTH_REQ)"
)
UNTRUSTED = (
    "sasl_ssl://127.0.0.1:9192/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
    "certificate verify failed: broker certificate could not be verified (after 13ms in state "
    "SSL_HANDSHAKE)"
)


def test_the_broker_certificate_is_signed_by_the_ca_for_127_0_0_1(tmp_path: Path) -> None:
    listener = SecuredListener(tmp_path)
    listener.prepare(ADDRESS)
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(listener.ca_file), "-verify_ip", "127.0.0.1",
         str(listener.keystore_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_each_start_has_a_new_password_in_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    listener = SecuredListener(tmp_path)
    listener.prepare(ADDRESS)
    first = read_properties(listener.client_properties_file)
    listener.prepare(ADDRESS)
    second = read_properties(listener.client_properties_file)
    assert first["sasl.password"] != second["sasl.password"]
    assert second["bootstrap.servers"] == ADDRESS and second["security.protocol"] == "SASL_SSL"
    assert listener.client_properties_file.stat().st_mode & 0o077 == 0
    assert second["sasl.password"] in str(listener.broker_settings())


def test_a_refused_password_names_the_properties_file(tmp_path: Path) -> None:
    settings = load_settings(kafka_properties_file=properties(tmp_path))
    line = refusal(KafkaError(KafkaError._AUTHENTICATION, WRONG_PASSWORD), ADDRESS, settings)
    assert line == (
        f"the Kafka broker at {ADDRESS} refused the credentials in {tmp_path / 'p.properties'}: "
        "SASL authentication error: Authentication failed: Invalid username or password"
    )


def test_an_untrusted_certificate_names_the_ca_setting(tmp_path: Path) -> None:
    settings = load_settings(kafka_properties_file=properties(tmp_path))
    line = refusal(KafkaError(KafkaError._SSL, UNTRUSTED), ADDRESS, settings)
    assert line is not None and "is not trusted by ssl.ca.location in" in line, line


def test_a_broker_away_is_no_refusal(tmp_path: Path) -> None:
    settings = load_settings(kafka_properties_file=properties(tmp_path))
    away = KafkaError(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:9192 failed")
    assert refusal(away, ADDRESS, settings) is None


def properties(folder: Path) -> Path:
    path = folder / "p.properties"
    path.write_text(f"bootstrap.servers={ADDRESS}\nsecurity.protocol=SASL_SSL\n")
    return path
