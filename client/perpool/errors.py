"""Errors a user of the library or CLI can act on, and program errors named from the IDL.

Every :class:`PerpoolError` has a stable ``code`` (what ``--json`` prints as ``error.code``), a
one-line ``message`` and optional ``details``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from anchorpy import Idl
from solders.transaction_status import TransactionErrorInstructionError

_ANCHOR_ERROR = re.compile(
    r"Error Code: (?P<name>\w+)\. Error Number: (?P<number>\d+)\. Error Message: (?P<msg>.*?)\.?$"
)


class PerpoolError(Exception):
    """A failure with a stable machine-readable code and a one-line human message."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InputError(PerpoolError):
    """Input rejected before anything was sent (bad amount, unknown symbol, no balance, ...)."""

    code = "invalid_input"
    exit_code = 2


class RpcUnreachable(PerpoolError):
    code = "rpc_unreachable"


class TransactionFailed(PerpoolError):
    """A transaction (or its simulation) failed; ``program_error`` names the IDL error."""

    code = "program_error"

    def __init__(
        self,
        message: str,
        *,
        program_error: dict[str, Any] | None,
        logs: Sequence[str],
        signature: str | None = None,
    ) -> None:
        details: dict[str, Any] = {"program_error": program_error, "logs": failing_lines(logs)}
        if signature is not None:
            details["signature"] = signature
        super().__init__(
            message, code="program_error" if program_error else "transaction_failed", **details
        )
        self.program_error = program_error
        self.all_logs = list(logs)


def idl_errors(idl: Idl) -> dict[int, tuple[str, str]]:
    """Program error number → (name, message) from the IDL."""
    return {e.code: (e.name, e.msg or e.name) for e in (idl.errors or [])}


def program_error_from(err: Any, logs: Sequence[str], idl: Idl) -> dict[str, Any] | None:
    """The program error of a failed transaction: from the Anchor log line, else the custom
    error number looked up in the IDL; None when the failure is not a Perpool error."""
    for line in logs:
        match = _ANCHOR_ERROR.search(line)
        if match:
            return {
                "name": match["name"],
                "number": int(match["number"]),
                "message": match["msg"],
            }
    if isinstance(err, TransactionErrorInstructionError):
        number = getattr(err.err, "code", None)
        known = idl_errors(idl).get(number) if isinstance(number, int) else None
        if known is not None:
            return {"name": known[0], "number": number, "message": known[1]}
    return None


def transaction_failure(
    err: Any, logs: Sequence[str], idl: Idl, *, signature: str | None = None
) -> TransactionFailed:
    named = program_error_from(err, logs, idl)
    if named is not None:
        message = f"program error {named['name']}: {named['message']}"
    else:
        detail = next((line for line in reversed(logs) if "failed" in line), None)
        message = f"transaction failed: {detail or err}"
    return TransactionFailed(message, program_error=named, logs=logs, signature=signature)


def failing_lines(logs: Sequence[str], limit: int = 6) -> list[str]:
    """The log lines that explain a failure (errors and failures, else the last lines)."""
    wanted = [
        line
        for line in logs
        if "Error" in line or "failed" in line or "insufficient" in line.lower()
    ]
    return (wanted or list(logs))[-limit:]
