"""The lock file: what `make` installs on every Python the project promises, from wheels."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHONS = ("cp311", "cp312", "cp313", "cp314")  # requires-python >= 3.11; 3.14 has wheels too


def locked_packages() -> list[dict[str, object]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return [p for p in lock["package"] if "registry" in p["source"]]


def installs_on(wheel: str, python: str) -> bool:
    """Whether a wheel's tags (PEP 427) fit CPython `python` on Linux x86_64."""
    pythons, abi, platform = wheel.removesuffix(".whl").split("-")[-3:]
    if platform != "any" and not re.search(r"linux.*x86_64", platform):
        return False
    if abi == "abi3":
        return int(pythons.split(".")[0].removeprefix("cp")) <= int(python.removeprefix("cp"))
    if python in pythons.split("."):
        return True
    # A pure wheel tagged py3 fits every Python 3; one tagged py311 fits 3.11 and later (PEP 425).
    minor = int(python.removeprefix("cp3"))
    return abi == "none" and any(
        tag == "py3" or (tag.startswith("py3") and int(tag.removeprefix("py3")) <= minor)
        for tag in pythons.split(".")
    )


def test_every_locked_package_has_a_wheel_for_each_python_promised() -> None:
    # A package may be locked at two versions, one for older Pythons (numpy, for one).
    wheels: dict[str, list[str]] = {}
    for package in locked_packages():
        urls = [str(w["url"]) for w in package.get("wheels", [])]  # type: ignore[attr-defined]  # a list of tables
        wheels.setdefault(str(package["name"]), []).extend(u.rsplit("/", 1)[1] for u in urls)
    missing = [
        f"{name} on {python}"
        for name, files in wheels.items()
        for python in PYTHONS
        if not any(installs_on(wheel, python) for wheel in files)
    ]
    assert not missing, "no wheel for: " + ", ".join(missing)


def test_the_lock_says_which_pythons_it_was_made_for() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert lock["requires-python"] == project["requires-python"] == ">=3.11"
