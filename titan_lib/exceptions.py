"""Errors raised by TITAN.

Every error derives from :class:`TitanError`. Faces turn them into something a user can
act on: the CLI prints ``error: <message>`` and exits 1; the HTTP API maps each class to a
status code and the body ``{"error": {"code", "message", "details"}}``.

Standard library only: the Lambda package imports this module.
"""

from __future__ import annotations

from typing import Any


class TitanError(Exception):
    """Base class of every TITAN error.

    Parameters
    ----------
    message
        What is wrong and where, in one sentence a user can act on.
    details
        Machine-readable context (file, row, column, symbol, ...). JSON-serialisable.
    """

    code: str = "titan_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The one error shape used by every face: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details}


class DataValidationError(TitanError):
    """Input data (CSV, Parquet, prices) failed validation; nothing was written."""

    code = "invalid_data"


class ParameterError(TitanError, ValueError):
    """A function or command was given a parameter it cannot use."""

    code = "invalid_parameter"


class NotFoundError(TitanError, LookupError):
    """A symbol, run, model, order or object does not exist in the store."""

    code = "not_found"


class ConflictError(TitanError):
    """A write conflicts with what is already stored (an existing id, another body)."""

    code = "conflict"


class StoreError(TitanError):
    """The store (local folder or S3) could not be read or written."""

    code = "store_error"


class UnavailableError(TitanError):
    """Something the request needs cannot answer now (a reference file out of date, a
    dependency down); the request itself was fine and may be retried later."""

    code = "unavailable"


class SchemaVersionError(TitanError):
    """A stored document has a schema version this code does not understand."""

    code = "unsupported_schema"


class ConvergenceError(TitanError):
    """A numerical fit did not converge or the data are degenerate."""

    code = "no_convergence"


class RunFailedError(TitanError):
    """A notebook run or pipeline step failed; its record says where."""

    code = "run_failed"
