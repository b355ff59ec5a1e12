"""A service process loads only what its work needs: every module it imports stays in its
memory for good, and the shop runs five Python processes beside the broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pizzashop.contract import SERVICES

# Modules of the web app, the bench and tracing's export, none of which a service uses with
# tracing off.
NOT_FOR_A_SERVICE = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "httpx",
    "matplotlib",
    "psycopg",
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "pizzashop.web",
    "pizzashop.bench",
)

# What `pizzashop service <name>` imports and builds before it connects to the broker: the
# command's own module, loaded through the group as the command line loads it, then the service.
SERVICE_START = """
import json, sys
import click
from pizzashop.cli import main
from pizzashop.config import load_settings
from pizzashop.observe import tracing
from pizzashop.services import build_service

assert main.get_command(click.Context(main), "service") is not None
build_service(sys.argv[1], load_settings())
tracing.start_tracing(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(service: str, state_dir: Path) -> set[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment["PYTHONPATH"] = os.pathsep.join(sys.path)
    # A read model of its own: not the one a `make run` in this folder left behind.
    environment["PIZZASHOP_STATE_DIR"] = str(state_dir)
    run = subprocess.run(
        [sys.executable, "-c", SERVICE_START, service],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(run.stdout))


def test_a_service_with_tracing_off_loads_neither_the_web_nor_the_tracing_sdk(
    tmp_path: Path,
) -> None:
    for service in SERVICES:
        loaded = modules_loaded_by(service, tmp_path)
        unwanted = sorted(
            name
            for name in loaded
            if any(name == heavy or name.startswith(heavy + ".") for heavy in NOT_FOR_A_SERVICE)
        )
        assert not unwanted, f"the {service} service imports {unwanted}"
