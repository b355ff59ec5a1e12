"""Settings: defaults < config file < PIZZASHOP_* variables < overrides, each value typed, and a
value the shop cannot use is one clear line."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pizzashop.config import ConfigError, Settings, as_environment, load_settings, shop_secret


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pizzashop.toml"
    monkeypatch.setenv("PIZZASHOP_CONFIG", str(path))
    return path


def test_the_file_beats_the_defaults_the_environment_the_file_and_overrides_everything(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[pizzashop]\ntime_scale = 0.5\npartitions = 3\nweb_port = 8100\n")
    monkeypatch.setenv("PIZZASHOP_PARTITIONS", "4")
    monkeypatch.setenv("PIZZASHOP_WEB_PORT", "8200")

    settings = load_settings(web_port=8300)

    assert (settings.time_scale, settings.partitions, settings.web_port) == (0.5, 4, 8300)
    assert settings.capacity == Settings.model_fields["capacity"].default


def test_a_file_without_the_pizzashop_table_is_read_from_its_top_level(config_file: Path) -> None:
    config_file.write_text('processing_guarantee = "at_least_once"\nstate_dir = "~/shop"\n')
    settings = load_settings()
    assert settings.processing_guarantee == "at_least_once"
    assert settings.state_dir == Path.home() / "shop", "a ~ in a path is the home folder"


def test_an_empty_variable_means_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIZZASHOP_DATABASE_URL", "")
    assert load_settings().database_url is None
    monkeypatch.setenv("PIZZASHOP_ADMIN_TOKEN", "")
    assert load_settings().admin_token is None, "an empty token would open the operator's pages"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PIZZASHOP_TIME_SCALE", "fast", "time_scale"),
        ("PIZZASHOP_TIME_SCALE", "-1", "time_scale"),
        ("PIZZASHOP_PARTITIONS", "0", "partitions"),
        ("PIZZASHOP_PROCESSING_GUARANTEE", "maybe_once", "processing_guarantee"),
        ("PIZZASHOP_KAFKA_PROPERTIES_FILE", "/nowhere/cluster.properties", "kafka_properties_file"),
        ("PIZZASHOP_LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("PIZZASHOP_DATABASE_URL", "mysql://pizza@db/shop", "sqlite:///"),
        ("PIZZASHOP_DATABASE_URL", "mysql://pizza@db/shop", "PIZZASHOP_DATABASE_URL"),
    ],
)
def test_a_value_the_shop_cannot_use_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert named in message and "\n" not in message, message


def test_a_log_level_in_lower_case_is_the_same_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIZZASHOP_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_an_unknown_setting_in_the_file_is_refused_and_a_missing_file_is_said(
    config_file: Path,
) -> None:
    config_file.write_text("[pizzashop]\ntime_scal = 0\n")
    with pytest.raises(ConfigError, match="unknown setting 'time_scal'"):
        load_settings()
    config_file.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_the_settings_pass_to_child_processes_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        time_scale=0.25, partitions=2, state_dir=Path("/tmp/shop"), count_stock=False
    )
    for name, value in as_environment(settings).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings


def test_processes_starting_together_share_one_shop_secret_made_whole(tmp_path: Path) -> None:
    """Two web processes started at once each read the one secret the first of them made:
    otherwise a cookie signed by one is refused by the other."""
    settings = Settings(state_dir=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        secrets_read = set(pool.map(lambda _: shop_secret(settings), range(32)))
    assert len(secrets_read) == 1 and len(secrets_read.pop()) >= 32
    assert [p.name for p in tmp_path.iterdir()] == ["web-secret"]  # no file left half-made
    assert (tmp_path / "web-secret").stat().st_mode & 0o777 == 0o600
