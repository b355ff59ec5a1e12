"""One Settings object, read once at start-up: defaults < config file < environment.

No other module reads environment variables; everything is passed down from here.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ProcessingGuarantee = Literal["exactly_once", "at_least_once"]

ENV_PREFIX = "PIZZASHOP_"
CONFIG_FILE_ENV = "PIZZASHOP_CONFIG"
DEFAULT_CONFIG_FILE = Path("pizzashop.toml")


class ConfigError(ValueError):
    """A setting has a value the shop cannot use."""


@dataclass(frozen=True)
class Settings:
    # Kafka. With no bootstrap servers the shop starts its own local broker.
    bootstrap_servers: str | None = None
    kafka_properties_file: Path | None = None  # librdkafka properties for SASL/SSL clusters
    kafka_version: str = "4.4.0"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_start_timeout: float = 60.0
    partitions: int = 6
    replication_factor: int = 1
    processing_guarantee: ProcessingGuarantee = "exactly_once"

    # Where the local broker's data, the read model and logs live.
    state_dir: Path = Path(".pizzashop")
    cache_dir: Path = Path.home() / ".cache" / "pizzashop"
    database_url: str | None = None  # default: sqlite file under state_dir

    # The kitchen. 1 = the seed's seconds, 0 = instant.
    time_scale: float = 1.0
    capacity: int = 0  # orders a service works on at once; 0 = unlimited
    stuck_after: float = 120.0  # real seconds without progress before an order is stuck
    # Real seconds a service remembers an order it handled, to ignore it if it comes again.
    remember_orders_for: float = 24 * 3600.0

    # The web app.
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    secret_key: str | None = None  # signs session cookies; default: generated and kept in state_dir

    log_level: str = "INFO"

    @property
    def uses_local_broker(self) -> bool:
        return not self.bootstrap_servers

    @property
    def local_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def readmodel_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'readmodel.sqlite3'}"

    def scaled(self, seconds: float) -> float:
        """A simulated duration in real seconds."""
        return seconds * self.time_scale

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Defaults, then the config file (if any), then PIZZASHOP_* variables, then overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or _config_file_from(environ)
    if path is not None:
        values.update(_read_config_file(path))
    values.update(_read_environment(environ))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(values)


def _config_file_from(environ: Mapping[str, str]) -> Path | None:
    if CONFIG_FILE_ENV in environ:
        return Path(environ[CONFIG_FILE_ENV])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    section: dict[str, Any] = data.get("pizzashop", data)
    return section


def _read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != CONFIG_FILE_ENV:
            name = key[len(ENV_PREFIX) :].lower()
            if name in names:
                values[name] = value
    return values


def _build(values: dict[str, Any]) -> Settings:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    converted = {name: _convert(name, fields[name].type, value) for name, value in values.items()}
    settings = Settings(**converted)
    _validate(settings)
    if settings.kafka_properties_file is not None and not settings.bootstrap_servers:
        # A properties file that names its cluster means: use that cluster, start no broker.
        servers = read_properties(settings.kafka_properties_file).get("bootstrap.servers")
        settings = settings.replace(bootstrap_servers=servers)
    return settings


def _convert(name: str, type_name: Any, value: Any) -> Any:
    text = str(type_name)
    try:
        if value == "" and "None" in text:
            return None
        if "Path" in text:
            return Path(value).expanduser()
        if text.startswith("int"):
            return int(value)
        if text.startswith("float"):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r}: {value!r} is not a {text}") from None
    return value


def _validate(s: Settings) -> None:
    if s.time_scale < 0:
        raise ConfigError("time_scale must be 0 or more")
    if s.partitions < 1:
        raise ConfigError("partitions must be at least 1")
    if s.remember_orders_for < 0:
        raise ConfigError("remember_orders_for must be 0 seconds or more")
    if s.capacity < 0:
        raise ConfigError("capacity must be 0 (unlimited) or more")
    if s.processing_guarantee not in ("exactly_once", "at_least_once"):
        raise ConfigError("processing_guarantee must be exactly_once or at_least_once")
    if s.kafka_properties_file is not None and not s.kafka_properties_file.exists():
        raise ConfigError(f"kafka_properties_file {s.kafka_properties_file} does not exist")


def shop_secret(settings: Settings) -> str:
    """The key that signs session cookies and turns idempotency keys into order ids:
    configured, or made once and kept in the state folder (so every process shares it)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.state_dir / "web-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def as_environment(settings: Settings) -> dict[str, str]:
    """The settings as PIZZASHOP_* variables, for the shop's child processes."""
    environment = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            environment[ENV_PREFIX + f.name.upper()] = str(value)
    return environment


def kafka_client_config(settings: Settings, bootstrap_servers: str | None = None) -> dict[str, Any]:
    """The librdkafka settings every client of this shop starts from."""
    config: dict[str, Any] = {}
    if settings.kafka_properties_file is not None:
        config.update(read_properties(settings.kafka_properties_file))
    if settings.log_level != "DEBUG":
        # librdkafka would print every failed reconnect; the shop reports problems once instead.
        config["log_level"] = 0
    config["bootstrap.servers"] = (
        bootstrap_servers or settings.bootstrap_servers or settings.local_bootstrap_servers
    )
    return config


def read_properties(path: Path) -> dict[str, str]:
    """A Java-style properties file (key=value, # comments), as librdkafka settings."""
    config: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected key=value")
        config[key.strip()] = value.strip()
    return config
