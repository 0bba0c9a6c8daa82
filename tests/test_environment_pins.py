"""environment.yml and pyproject.toml name the same packages with the same pins."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from conftest import REPO


def _normalise(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(==\s*[^;\s]+)?\s*", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower() + (match.group(2) or "")
    return name, (match.group(3) or "").replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return dict(_normalise(r) for r in reqs)


def _environment() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip: list[str] = []
    conda: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip.extend(item.get("pip", []))
        else:
            conda.append(str(item))
    return dict(_normalise(r) for r in pip), conda


def test_every_pyproject_pin_is_in_environment_yml() -> None:
    pins, _ = _environment()
    expected = _pyproject()
    missing = sorted(set(expected) - set(pins))
    extra = sorted(set(pins) - set(expected))
    differ = sorted(n for n in set(expected) & set(pins) if expected[n] != pins[n])
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not extra, f"in environment.yml but not pyproject.toml: {extra}"
    assert not differ, f"pins differ: {[(n, expected[n], pins[n]) for n in differ]}"


def test_every_direct_dependency_is_pinned_exactly() -> None:
    unpinned = sorted(name for name, pin in _pyproject().items() if not pin.startswith("=="))
    assert not unpinned, f"not pinned with ==: {unpinned}"


def _lock() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    requirements = (line.split("#", 1)[0] for line in lines)
    return dict(_normalise(r) for r in requirements if r.strip())


def test_lock_agrees_with_direct_pins() -> None:
    lock = _lock()
    for name, pin in _pyproject().items():
        base = name.split("[", 1)[0]
        assert lock.get(base) == pin, f"{base}: pyproject {pin}, lock {lock.get(base)}"


def test_conda_python_matches_requires_python() -> None:
    _, conda = _environment()
    assert "python=3.11" in conda
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires


def _excluded() -> list[str]:
    lines = (REPO / "requirements.exclude").read_text().splitlines()
    return [_normalise(line)[0] for line in lines if line.strip() and not line.startswith("#")]


def test_excluded_packages_are_neither_locked_nor_installed() -> None:
    from importlib.metadata import PackageNotFoundError, distribution

    excluded = _excluded()
    assert excluded, "requirements.exclude names no package"
    lock = _lock()
    for name in excluded:
        assert name not in lock, f"{name} is excluded from the install but pinned in the lock"
        with pytest.raises(PackageNotFoundError):
            distribution(name)
