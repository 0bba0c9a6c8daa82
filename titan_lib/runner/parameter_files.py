"""Parameter files and notebook locations.

A parameter file is YAML: a mapping of parameter name to value (papermill's ``-f``
format), plus an optional reserved key ``profiles`` holding named overrides::

    # parameters/02_pair_scan.yaml: defaults for the bundled data
    start: "2010-01-04"
    max_pairs: 25
    profiles:
      quick: {start: "2018-01-02", max_pairs: 10}
      full: {start: "1990-01-02"}

``parameters/<notebook>.yaml`` is read for a notebook by default; a profile applies its
overrides on top of the file's top-level values. Notebooks are found by name in
``notebooks/`` below the project folder (the working directory unless given).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from titan_lib.exceptions import NotFoundError, ParameterError

PROFILES_KEY = "profiles"
NOTEBOOKS_DIR = "notebooks"
PARAMETERS_DIR = "parameters"


def resolve_notebook(notebook: str | Path, root: str | Path | None = None) -> Path:
    """Find a notebook by path or by name.

    Parameters
    ----------
    notebook
        A path to an ``.ipynb`` file, or a name such as ``02_pair_scan`` looked up as
        ``<root>/notebooks/<name>.ipynb``.
    root
        The project folder; the working directory when ``None``.

    Raises
    ------
    NotFoundError
        Neither the path nor the named notebook exists; lists the notebooks available.
    """
    base = Path(root) if root is not None else Path.cwd()
    given = Path(notebook)
    candidates = [given, base / given]
    name = given.name if given.suffix == ".ipynb" else f"{given.name}.ipynb"
    candidates.append(base / NOTEBOOKS_DIR / name)
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".ipynb":
            return candidate.resolve()
    available = sorted(p.stem for p in (base / NOTEBOOKS_DIR).glob("*.ipynb"))
    raise NotFoundError(
        f"notebook {str(notebook)!r} not found (looked in {base / NOTEBOOKS_DIR}); "
        f"available: {', '.join(available) or 'none'}",
        {"notebook": str(notebook), "available": available},
    )


def default_parameter_file(notebook: Path, root: str | Path | None = None) -> Path | None:
    """``<root>/parameters/<notebook stem>.yaml`` when it exists."""
    base = Path(root) if root is not None else Path.cwd()
    path = base / PARAMETERS_DIR / f"{notebook.stem}.yaml"
    return path if path.is_file() else None


def read_yaml_mapping(path: str | Path, what: str = "parameter file") -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; an empty file is an empty mapping.

    Raises
    ------
    NotFoundError
        The file does not exist.
    ParameterError
        The file is not valid YAML or does not hold a mapping.
    """
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{what} {file} does not exist", {"path": str(file)}) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParameterError(
            f"{what} {file} is not valid YAML: {exc}", {"path": str(file)}
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParameterError(
            f"{what} {file} must hold a mapping, got {type(loaded).__name__}", {"path": str(file)}
        )
    return loaded


def load_parameter_file(path: str | Path, profile: str | None = None) -> dict[str, Any]:
    """Values of a parameter file, with a profile's overrides applied.

    Parameters
    ----------
    path
        The YAML file.
    profile
        A name under the file's ``profiles`` key; ``None`` uses the top-level values only.
        A file without that profile contributes its top-level values (a profile is
        optional per notebook).

    Raises
    ------
    ParameterError
        The file is malformed or its ``profiles`` entry is not a mapping of mappings.
    """
    data = read_yaml_mapping(path)
    profiles = data.pop(PROFILES_KEY, None) or {}
    if not isinstance(profiles, dict) or not all(
        isinstance(v, dict) or v is None for v in profiles.values()
    ):
        raise ParameterError(
            f"parameter file {path}: {PROFILES_KEY!r} must map profile names to mappings",
            {"path": str(path)},
        )
    if profile is not None and profiles.get(profile):
        data.update(profiles[profile])
    return data


def profile_names(path: str | Path) -> list[str]:
    """The profiles a parameter file defines (its ``profiles`` keys), sorted."""
    profiles = read_yaml_mapping(path).get(PROFILES_KEY) or {}
    return sorted(str(name) for name in profiles) if isinstance(profiles, dict) else []


def merge_parameters(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers override earlier ones (file defaults < profile < files < ``-p``)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


def collect_parameters(
    notebook: Path,
    *,
    profile: str | None = None,
    files: list[Path] | None = None,
    values: Mapping[str, Any] | None = None,
    root: str | Path | None = None,
    use_defaults_file: bool = True,
    require_profile: bool = True,
) -> dict[str, Any]:
    """The parameter values for one run, from lowest to highest precedence:
    ``parameters/<notebook>.yaml`` (with ``profile``), each of ``files`` (with
    ``profile``), then ``values``.

    Parameters
    ----------
    notebook
        The resolved notebook path (its stem names the defaults file).
    profile
        Profile name applied in every file that defines it.
    files
        Extra parameter files (papermill ``-f`` format, profiles allowed).
    values
        Explicit values (``-p NAME VALUE``, a pipeline step's parameters).
    root
        The project folder holding ``parameters/``.
    use_defaults_file
        Read ``parameters/<notebook>.yaml`` when it exists.
    require_profile
        Refuse a ``profile`` that none of the files defines (a pipeline checks its profile
        over all its steps instead).

    Raises
    ------
    ParameterError
        ``profile`` is defined by none of the files read (a typo); the message names the
        profiles that exist.
    """
    layers: list[Mapping[str, Any] | None] = []
    defaults = default_parameter_file(notebook, root) if use_defaults_file else None
    read = [defaults] if defaults is not None else []
    read += list(files or [])
    for file in read:
        layers.append(load_parameter_file(file, profile))
    if profile is not None and require_profile:
        known = sorted({name for file in read for name in profile_names(file)})
        if profile not in known:
            where = ", ".join(str(f) for f in read) or "no parameter file"
            raise ParameterError(
                f"unknown profile {profile!r} for notebook {notebook.stem}; "
                f"profiles in {where}: {', '.join(known) or 'none'}",
                {"profile": profile, "profiles": known},
            )
    layers.append(values)
    return merge_parameters(*layers)
