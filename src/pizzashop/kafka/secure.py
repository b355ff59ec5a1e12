"""The local broker's secured listener: SASL_SSL, PLAIN over TLS, as Confluent Cloud is reached.

Its certificates come from the project's own `kafka/make-kafka-certs` (a throwaway CA, made
once per state folder); its password is new at every start. The shop reaches it through the
client properties file written here, the same kind of file as for any SASL_SSL cluster.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pizzashop.config import read_properties

LISTENER = "SASL_SSL"
SASL_USER = "pizzashop"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


class CertificatesNotMade(RuntimeError):
    """openssl is missing or failed; the message says which."""


def make_certificates(folder: Path, ca_only: bool = False) -> None:
    """A throwaway CA in `folder` (ca.pem), and unless `ca_only` the broker's keystore signed by it
    for 127.0.0.1 and localhost (broker.pem: PKCS#8 key, then the certificate chain)."""
    if shutil.which("openssl") is None:
        raise CertificatesNotMade(
            "openssl not found: install it (Debian: apt-get install openssl) to make the "
            "secured listener's certificates"
        )
    script = resources.files("pizzashop") / "kafka" / "make-kafka-certs"
    with resources.as_file(script) as script_path:
        result = subprocess.run(
            ["bash", str(script_path), *(["--ca-only"] if ca_only else []), str(folder)],
            capture_output=True,
            text=True,
            check=False,  # the return code is reported below
        )
    if result.returncode != 0:
        raise CertificatesNotMade(f"make-kafka-certs failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class SecuredListener:
    """The files of the secured listener, under the local broker's state folder."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        return self.folder / "broker.pem"

    @property
    def client_properties_file(self) -> Path:
        return self.folder / "client.properties"

    def prepare(self, bootstrap_servers: str) -> None:
        """Certificates (made once) and a new password, written to the client properties file."""
        if not self.keystore_file.exists():
            make_certificates(self.folder)
        self.client_properties_file.touch(mode=0o600)
        self.client_properties_file.write_text(
            "# The local broker's secured listener; any SASL_SSL cluster takes the same keys.\n"
            + "".join(
                f"{key}={value}\n"
                for key, value in self._client_settings(bootstrap_servers).items()
            )
        )

    def _client_settings(self, bootstrap_servers: str) -> dict[str, str]:
        return {
            "bootstrap.servers": bootstrap_servers,
            "security.protocol": LISTENER,
            "sasl.mechanisms": "PLAIN",
            "sasl.username": SASL_USER,
            "sasl.password": secrets.token_urlsafe(24),
            "ssl.ca.location": str(self.ca_file),
        }

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings that reach the listener, as written in the properties file."""
        return read_properties(self.client_properties_file)

    def broker_settings(self) -> dict[str, Any]:
        """The broker's settings for the listener: PLAIN with the one user, TLS from the keystore."""
        password = self.client_config()["sasl.password"]
        prefix = f"listener.name.{LISTENER.lower()}."
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            f"{prefix}plain.sasl.jaas.config": (
                f'{PLAIN_LOGIN} required user_{SASL_USER}="{password}";'
            ),
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": self.keystore_file,
        }
