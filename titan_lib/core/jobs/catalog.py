"""The notebook catalog: which notebooks a job may run, their parameters and profiles.

The API validates a job request against this document before anything is queued, with
the checks of ``titan run``: the notebook exists, the profile is one its parameter file
defines, every name is declared, every value has the declared type, every required value
is given (by the request, the parameter file or the profile). The Lambda cannot read
notebooks (papermill is not packaged), so the research side writes the catalog from the
notebooks' ``parameters`` cells and ``parameters/<notebook>.yaml``
(:func:`titan_lib.runner.jobs.notebook_catalog`); ``titan lambdas package`` ships it as
``chalicelib/notebook_catalog.json``. The worker validates again with the runner itself.

Document (schema_version 1)::

    {"schema_version": 1,
     "notebooks": {"05_backtest": {
         "parameters": {"entry_z": {"type": "float", "required": false}, ...},
         "defaults": ["entry_z", ...],              # names parameters/05_backtest.yaml sets
         "profiles": {"quick": ["start", ...]}}}}  # names each profile sets
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from titan_lib.core.jobs.models import JobRequest
from titan_lib.exceptions import ParameterError, SchemaVersionError

CATALOG_SCHEMA_VERSION = 1
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "tuple": (list,),
    "dict": (dict,),
}


def value_matches(value: Any, type_name: str) -> bool:
    """Whether a JSON value fits a declared annotation (``float``, ``list[str]``, ...).

    An ``int`` fits ``float``; a bool fits neither; an annotation this check does not know
    accepts anything (papermill passes it as is).
    """
    match = re.fullmatch(r"\s*(\w+)\s*(?:\[(.*)\])?\s*", type_name)
    base, inner = (match.group(1).lower(), (match.group(2) or "").strip()) if match else ("", "")
    if base == "optional":
        return value is None or value_matches(value, inner)
    if base not in _JSON_TYPES:
        return True
    if isinstance(value, bool) and base in ("int", "float"):
        return False
    if not isinstance(value, _JSON_TYPES[base]):
        return False
    if isinstance(value, list) and inner:
        return all(value_matches(item, inner) for item in value)
    return True


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook of the catalog."""

    name: str
    parameters: dict[str, dict[str, Any]]
    defaults: frozenset[str]
    profiles: dict[str, frozenset[str]]

    def describe(self) -> dict[str, str]:
        """Parameter name to ``type`` (``type, required`` for required ones)."""
        return {
            name: spec["type"] + (", required" if spec.get("required") else "")
            for name, spec in self.parameters.items()
        }


class NotebookCatalog:
    """The notebooks a job may run, read from a catalog document."""

    def __init__(self, notebooks: dict[str, NotebookEntry]) -> None:
        self.notebooks = notebooks

    @classmethod
    def from_json(cls, text: str | bytes) -> NotebookCatalog:
        """Read a catalog document (see the module docstring)."""
        doc = json.loads(text)
        if doc.get("schema_version") != CATALOG_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"notebook catalog schema_version {doc.get('schema_version')!r} is not "
                f"{CATALOG_SCHEMA_VERSION}"
            )
        return cls(
            {
                name: NotebookEntry(
                    name=name,
                    parameters=dict(entry["parameters"]),
                    defaults=frozenset(entry.get("defaults", ())),
                    profiles={p: frozenset(n) for p, n in entry.get("profiles", {}).items()},
                )
                for name, entry in doc["notebooks"].items()
            }
        )

    def check(self, request: JobRequest) -> None:
        """Refuse a request ``titan run`` would refuse, naming every problem.

        Raises
        ------
        ParameterError
            Unknown notebook or profile, an unknown parameter, a value of the wrong type or
            a required value given nowhere; ``details`` lists the problems and the
            notebook's parameters.
        """
        entry = self.notebooks.get(request.notebook)
        if entry is None:
            available = sorted(self.notebooks)
            raise ParameterError(
                f"unknown notebook {request.notebook!r}; available: {', '.join(available)}",
                {"field": "notebook", "available": available},
            )
        if request.profile is not None and request.profile not in entry.profiles:
            known = sorted(entry.profiles)
            raise ParameterError(
                f"unknown profile {request.profile!r} for notebook {entry.name}; "
                f"profiles: {', '.join(known) or 'none'}",
                {"field": "profile", "profiles": known},
            )
        supplied = set(request.parameters) | entry.defaults
        if request.profile is not None:
            supplied |= entry.profiles[request.profile]
        problems: list[str] = []
        for name, value in request.parameters.items():
            spec = entry.parameters.get(name)
            if spec is None:
                problems.append(f"unknown parameter {name!r}")
            elif value is None and spec.get("required"):
                problems.append(f"parameter {name!r} is required and cannot be None")
            elif value is not None and not value_matches(value, spec["type"]):
                problems.append(
                    f"parameter {name!r} must be {spec['type']}, got {json.dumps(value)[:60]}"
                )
        for name, spec in entry.parameters.items():
            if spec.get("required") and name not in supplied:
                problems.append(f"parameter {name!r} is required and was not given")
        if problems:
            raise ParameterError(
                f"notebook {entry.name}: " + "; ".join(problems),
                {
                    "field": "parameters",
                    "notebook": entry.name,
                    "problems": problems,
                    "parameters": entry.describe(),
                },
            )
