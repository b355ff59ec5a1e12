"""The code map in the docs lists every package and module of src/pizzashop, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "pizzashop"
CODE_MAP = ROOT / "docs" / "development" / "code-map.md"


def paths_in_the_map() -> set[str]:
    """The first cell of each table row: a path under src/pizzashop, a package ending in '/'."""
    return set(re.findall(r"^\| `([^`]+)` \|", CODE_MAP.read_text(), re.M))


def paths_in_the_tree() -> set[str]:
    """Every package (as 'name/') and every module; a package's __init__.py is the package."""
    found: set[str] = set()
    for module in PACKAGE.rglob("*.py"):
        relative = module.relative_to(PACKAGE)
        if "__pycache__" in relative.parts:
            continue
        if relative.name == "__init__.py" and relative.parent != Path("."):
            found.add(f"{relative.parent.as_posix()}/")
        else:
            found.add(relative.as_posix())
    return found


def exists(path: str) -> bool:
    return (PACKAGE / path.rstrip("/")).exists()


def test_every_package_and_module_is_in_the_code_map() -> None:
    missing = sorted(paths_in_the_tree() - paths_in_the_map())
    assert not missing, (
        f"{CODE_MAP.relative_to(ROOT)} does not list these paths of src/pizzashop: "
        + ", ".join(missing)
    )


def test_every_path_in_the_code_map_exists() -> None:
    extra = sorted(path for path in paths_in_the_map() if not exists(path))
    assert not extra, (
        f"{CODE_MAP.relative_to(ROOT)} lists paths that src/pizzashop does not have: "
        + ", ".join(extra)
    )
