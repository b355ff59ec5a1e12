"""One Settings object, read once at start-up: defaults < config file < environment < overrides.

pydantic-settings reads the `PIZZASHOP_*` variables and the TOML file and converts each value to
its type; a value it cannot use is one clear line (ConfigError). No other module reads
environment variables; everything is passed down from here.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ProcessingGuarantee = Literal["exactly_once", "at_least_once"]
# How a service's consumers share partitions: "classic" (the group rebalances as a whole,
# every member stops) or "consumer" (KIP-848: the broker assigns, members move one partition
# at a time without stopping the others; needs Kafka 4.0+).
GroupProtocol = Literal["classic", "consumer"]

ENV_PREFIX = "PIZZASHOP_"
CONFIG_FILE_ENV = "PIZZASHOP_CONFIG"
DEFAULT_CONFIG_FILE = Path("pizzashop.toml")
CONFIG_TABLE = "pizzashop"  # a config file's settings: this table, or else the top level
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The read model's databases, as `readmodel.store.open_readmodel` opens them.
DATABASE_URL_FORMS = ("sqlite:///", "postgresql://", "postgres://")


class ConfigError(ValueError):
    """A setting has a value the shop cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # Kafka. With no bootstrap servers the shop starts its own local broker.
    bootstrap_servers: str | None = None
    kafka_properties_file: Path | None = None  # librdkafka properties for SASL/SSL clusters
    kafka_version: str = "4.4.0"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_secure_port: int = 9192  # the SASL_SSL listener of `pizzashop kafka start --secure`
    kafka_start_timeout: float = 60.0
    partitions: int = Field(6, ge=1)
    replication_factor: int = 1
    processing_guarantee: ProcessingGuarantee = "exactly_once"
    group_protocol: GroupProtocol = "classic"
    # How long the shop's own topics keep records; None: for ever, since the log is the
    # source of truth and the read model is rebuilt from it.
    retention_hours: float | None = Field(None, gt=0)

    # A Schema Registry (Confluent's REST API: Confluent's own, Apicurio's ccompat, ...). Unset:
    # records are plain JSON, as the seed's. Its credentials, and the URL too, may come from
    # the properties file: schema.registry.url, basic.auth.user.info (as Confluent Cloud's).
    schema_registry_url: str | None = None
    registry_port: int = 8081  # the local registry's (`pizzashop registry start`, `up --registry`)

    # Where the local broker's data, the read model and logs live.
    state_dir: Path = Path(".pizzashop")
    cache_dir: Path = Path.home() / ".cache" / "pizzashop"
    database_url: str | None = None  # default: sqlite file under state_dir

    # The kitchen. 1 = the seed's seconds, 0 = instant.
    time_scale: float = Field(1.0, ge=0)
    capacity: int = Field(0, ge=0)  # orders a service works on at once; 0 = unlimited
    stuck_after: float = 120.0  # real seconds without progress before an order is stuck
    # Real seconds a service remembers an order it handled, to ignore it if it comes again.
    remember_orders_for: float = Field(24 * 3600.0, ge=0)
    # The pantry's starting stock: `pantry_stock` of each ingredient it names (a JSON object in
    # PIZZASHOP_PANTRY_STOCK), `pantry_default_stock` of every other. An ingredient takes it
    # until its first reservation or restock; from then on its level is in pizza-stock.
    pantry_default_stock: int = Field(10_000, ge=0)
    # Kept as (ingredient, count) pairs, so that settings stay hashable.
    pantry_stock: tuple[tuple[str, Annotated[int, Field(ge=0)]], ...] = ()
    # Off: stock is not counted. assemble makes every order on the menu at once, without
    # asking the pantry, and `up` and the bench start no pantry (the bench compares the two).
    count_stock: bool = True

    # The web app.
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    secret_key: str | None = None  # signs session cookies; default: generated and kept in state_dir
    admin_token: str | None = None  # opens the operator's pages; without it they do not exist
    session_days: float = Field(30.0, gt=0)  # a sign-in lasts this long, whatever the cookie says
    streams_per_session: int = Field(4, ge=1)  # live event streams one session may hold open
    orders_per_minute: int = Field(30, ge=0)  # one customer's orders in a minute; 0 = unlimited

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for log collectors

    # Seeing inside: each process serves /healthz, /readyz and /metrics (the web app on its
    # own port). A service's port: observe_port, or a free one when it is 0.
    observe_host: str = "127.0.0.1"
    observe_port: int = Field(0, ge=0, le=65535)
    metrics: bool = True  # off: /metrics is empty and nothing is counted (the bench compares)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides, then PIZZASHOP_* variables, then the config file (no .env, no secrets dir)."""
        return init_settings, env_settings, _config_file_source(settings_cls)

    @field_validator("bootstrap_servers", "kafka_properties_file", "database_url", "secret_key",
                     "admin_token", "retention_hours", "schema_registry_url",
                     mode="before")  # fmt: skip
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("pantry_stock", mode="before")
    @classmethod
    def _stock_pairs(cls, value: Any) -> Any:
        return tuple(sorted(value.items())) if isinstance(value, dict) else value

    @field_validator("kafka_properties_file", "state_dir", "cache_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(DATABASE_URL_FORMS):
            raise ValueError(
                "the read model is in SQLite or PostgreSQL: sqlite:///path/to/file or "
                "postgresql://user@host:port/database"
            )
        return value

    @model_validator(mode="after")
    def _properties_file_exists(self) -> Settings:
        if self.kafka_properties_file is not None and not self.kafka_properties_file.exists():
            raise ValueError(f"kafka_properties_file {self.kafka_properties_file} does not exist")
        return self

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
        return self.model_copy(update=changes)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """The settings: defaults, the config file, PIZZASHOP_* variables, then `overrides`.

    The config file is `config_file`, else $PIZZASHOP_CONFIG, else ./pizzashop.toml if present.
    """
    if config_file is not None:
        os.environ[CONFIG_FILE_ENV] = str(
            config_file
        )  # as `--config` says: the same as the variable
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        raise ConfigError(_one_line(e)) from None
    if settings.kafka_properties_file is not None and not settings.bootstrap_servers:
        # A properties file that names its cluster means: use that cluster, start no broker.
        servers = read_properties(settings.kafka_properties_file).get("bootstrap.servers")
        settings = settings.replace(bootstrap_servers=servers)
    return settings


def _config_file_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    path = Path(os.environ[CONFIG_FILE_ENV]) if CONFIG_FILE_ENV in os.environ else None
    if path is None and DEFAULT_CONFIG_FILE.exists():
        path = DEFAULT_CONFIG_FILE
    if path is None:
        return TomlConfigSettingsSource(settings_cls, toml_file=[])
    table = (CONFIG_TABLE,) if CONFIG_TABLE in _read_toml(path) else ()  # (): the file's root
    return TomlConfigSettingsSource(settings_cls, toml_file=path, toml_table_header=table)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def _one_line(error: ValidationError) -> str:
    problem = error.errors()[0]
    name = ".".join(str(part) for part in problem["loc"]) or "settings"
    if problem["type"] == "extra_forbidden":
        return f"unknown setting {name!r}"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if not problem["loc"]:
        return message
    variable = f"{ENV_PREFIX}{name.upper()}"
    return f"setting {name!r} ({variable}): {_shown(problem['input'])} is not usable: {message}"


def _shown(value: Any) -> str:
    """A value as a line shows it: a very long one cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def shop_secret(settings: Settings) -> str:
    """The key that signs session cookies and turns idempotency keys into order ids:
    configured, or made once and kept in the state folder (so every process shares it)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.state_dir / "web-secret"
    if not path.exists():
        _make_once(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def _make_once(path: Path, text: str) -> None:
    """Writes `text` to `path` unless it exists, whole or not at all: processes starting
    together (two web processes) each write a file of their own and link it in place; the
    first link wins and every process reads that one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.link(written, path)
    except FileExistsError:
        pass  # another process made it first
    finally:
        os.unlink(written)


def as_environment(settings: Settings) -> dict[str, str]:
    """The settings as PIZZASHOP_* variables, for the shop's child processes."""
    environment = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name == "pantry_stock":
            value = json.dumps(dict(value))  # read back as a JSON object
        if value is not None:
            environment[ENV_PREFIX + name.upper()] = str(value)
    return environment


def otlp_export_requested() -> bool:
    """Whether OpenTelemetry's own variables ask for traces over OTLP (the SDK reads the rest)."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"
    return bool(endpoint) and not disabled


def kafka_client_config(settings: Settings, bootstrap_servers: str | None = None) -> dict[str, Any]:
    """The librdkafka settings every client of this shop starts from."""
    config: dict[str, Any] = {}
    if settings.kafka_properties_file is not None:
        properties = read_properties(settings.kafka_properties_file)
        config.update((k, v) for k, v in properties.items() if not k.startswith(REGISTRY_KEYS))
    if settings.log_level != "DEBUG":
        # librdkafka would print every failed reconnect; the shop reports problems once instead.
        config["log_level"] = 0
    config["bootstrap.servers"] = (
        bootstrap_servers or settings.bootstrap_servers or settings.local_bootstrap_servers
    )
    return config


# The properties file's lines for the Schema Registry's client, not librdkafka's.
REGISTRY_KEYS = ("schema.registry.", "basic.auth.")


def registry_client_config(settings: Settings) -> dict[str, Any] | None:
    """The Schema Registry client's settings (None: no registry is configured)."""
    properties = {}
    if settings.kafka_properties_file is not None:
        properties = read_properties(settings.kafka_properties_file)
    url = settings.schema_registry_url or properties.get("schema.registry.url")
    if not url:
        return None
    config: dict[str, Any] = {"url": url}
    if "basic.auth.user.info" in properties:
        config["basic.auth.user.info"] = properties["basic.auth.user.info"]
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
