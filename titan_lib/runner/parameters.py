"""Notebook parameters: read them with papermill's inspection, check values before a run.

A notebook declares its parameters in the cell tagged ``parameters``, one typed
assignment per line::

    pair_y: str = "KO"            # dependent leg
    entry_z: float = 2.0          # |z| that opens a trade
    symbols: list[str] = []       # empty: every symbol in the store
    scan_run_id: str = None       # required: a default of None makes a value mandatory

Conventions checked by :func:`validate_parameters`:

- the annotation is the type (``int``, ``float``, ``str``, ``bool``, ``list[...]``,
  ``dict[...]``, ``Optional[...]``); an ``int`` is accepted where a ``float`` is declared;
- a default of ``None`` with a type that is not ``Optional[...]`` marks the value required;
- a name the notebook does not declare is an error.

Every error lists the notebook's real parameters with their types and defaults, so the
user sees what the notebook accepts without opening it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titan_lib.exceptions import ParameterError

_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "tuple": (list, tuple),
    "dict": (dict,),
}


@dataclass(frozen=True)
class NotebookParameter:
    """One parameter declared in a notebook's ``parameters`` cell.

    Attributes
    ----------
    name
        The variable name.
    type_name
        The annotation as written (``"float"``, ``"list[str]"``); ``"None"`` when untyped.
    default
        The default as source text (``"2.0"``, ``"'KO'"``).
    help
        The trailing comment, if any.
    """

    name: str
    type_name: str
    default: str
    help: str

    @property
    def required(self) -> bool:
        """A ``None`` default on a non-optional type: the caller must give a value."""
        return self.default == "None" and not _is_optional(self.type_name)

    def describe(self) -> str:
        """``name: type = default  # help`` (``required`` instead of the default)."""
        default = "required" if self.required else f"= {self.default}"
        text = f"{self.name}: {self.type_name} {default}"
        return f"{text}  # {self.help}" if self.help else text


def _is_optional(type_name: str) -> bool:
    lowered = type_name.replace(" ", "").lower()
    return lowered.startswith("optional[") or lowered in ("none", "nonetype", "any")


def inspect_parameters(notebook: str | Path) -> dict[str, NotebookParameter]:
    """Read a notebook's declared parameters with ``papermill.inspect_notebook``.

    Parameters
    ----------
    notebook
        Path of the ``.ipynb`` file.

    Returns
    -------
    dict
        Parameter name to :class:`NotebookParameter`, in declaration order.

    Raises
    ------
    ParameterError
        The file does not exist or is not a notebook.
    """
    import papermill

    path = Path(notebook)
    if not path.is_file():
        raise ParameterError(f"notebook {path} does not exist", {"notebook": str(path)})
    try:
        inspected = papermill.inspect_notebook(str(path))
    except Exception as exc:
        raise ParameterError(
            f"could not read notebook {path}: {exc}", {"notebook": str(path)}
        ) from None
    return {
        name: NotebookParameter(
            name=name,
            type_name=str(info["inferred_type_name"]),
            default=str(info["default"]),
            help=str(info["help"]),
        )
        for name, info in inspected.items()
    }


def describe_parameters(params: Mapping[str, NotebookParameter]) -> str:
    """The parameter list used in error messages, one indented line per parameter."""
    if not params:
        return "  (this notebook declares no parameters)"
    return "\n".join(f"  {p.describe()}" for p in params.values())


def _type_args(type_name: str) -> tuple[str, str]:
    """Split ``"list[str]"`` into ``("list", "str")``; ``"float"`` into ``("float", "")``."""
    match = re.fullmatch(r"\s*(\w+)\s*(?:\[(.*)\])?\s*", type_name)
    if match is None:
        return type_name.strip().lower(), ""
    return match.group(1).lower(), (match.group(2) or "").strip()


def _matches(value: Any, type_name: str) -> bool:
    base, inner = _type_args(type_name)
    if base == "optional":
        return value is None or _matches(value, inner)
    if base not in _SCALARS:
        return True  # untyped or a type this check does not know: papermill passes it as is
    if isinstance(value, bool) and base in ("int", "float"):
        return False
    if not isinstance(value, _SCALARS[base]):
        return False
    if base in ("list", "tuple") and inner and isinstance(value, list | tuple):
        return all(_matches(item, inner) for item in value)
    return True


def _normalise(value: Any, type_name: str) -> Any:
    """YAML turns ``2015-01-02`` into a date; a ``str`` parameter wants the ISO text."""
    base, inner = _type_args(type_name)
    if base == "optional":
        return None if value is None else _normalise(value, inner)
    if base == "str" and isinstance(value, dt.date):
        return value.isoformat()
    if base == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base in ("list", "tuple") and isinstance(value, list | tuple):
        return [_normalise(item, inner) for item in value]
    return value


def validate_parameters(
    notebook: str | Path,
    values: Mapping[str, Any],
    declared: Mapping[str, NotebookParameter] | None = None,
    pending: Collection[str] = (),
) -> dict[str, Any]:
    """Check parameter values against the notebook's declaration, before any kernel starts.

    Parameters
    ----------
    notebook
        Path of the ``.ipynb`` file (named in errors).
    values
        Parameter name to value, as they will be injected.
    declared
        The notebook's parameters, when already inspected (else read from ``notebook``).
    pending
        Names whose values arrive later (a pipeline step's inputs): they must be declared
        but are not required now.

    Returns
    -------
    dict
        The values, normalised (ISO text for dates given to ``str`` parameters, floats for
        integers given to ``float`` parameters).

    Raises
    ------
    ParameterError
        An unknown name, a value of the wrong type or a missing required value; the
        message lists every problem and the notebook's parameters.
    """
    params = dict(declared) if declared is not None else inspect_parameters(notebook)
    problems: list[str] = []
    for name, value in values.items():
        if name not in params:
            problems.append(f"unknown parameter {name!r}")
            continue
        param = params[name]
        if value is None and param.required:
            problems.append(f"parameter {name!r} is required and cannot be None")
        elif value is not None and not _matches(
            _normalise(value, param.type_name), param.type_name
        ):
            problems.append(
                f"parameter {name!r} must be {param.type_name}, got "
                f"{type(value).__name__} {value!r}"
            )
    for name in pending:
        if name not in params:
            problems.append(f"unknown parameter {name!r}")
    for param in params.values():
        if param.required and param.name not in values and param.name not in pending:
            problems.append(f"parameter {param.name!r} is required and was not given")
    if problems:
        name = Path(notebook).stem
        raise ParameterError(
            f"notebook {name}: "
            + "; ".join(problems)
            + f"\nparameters of {name}:\n"
            + describe_parameters(params),
            {
                "notebook": str(notebook),
                "problems": problems,
                "parameters": {p.name: p.describe() for p in params.values()},
            },
        )
    return {name: _normalise(value, params[name].type_name) for name, value in values.items()}


def parse_cli_value(raw: str, type_name: str) -> Any:
    """Turn the text of ``-p NAME VALUE`` into a value of the declared type.

    ``str`` parameters keep the text as given; every other type is read as YAML
    (``2.5``, ``true``, ``[KO, PEP]``), so the type check then applies as for files.
    """
    import yaml

    base, _ = _type_args(type_name)
    if base == "str":
        return raw
    if base == "optional" and _type_args(_type_args(type_name)[1])[0] == "str":
        return None if raw in ("None", "null", "~") else raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
