"""The tool's own error types. Every user-facing failure is one of these, rendered as one line."""

from __future__ import annotations


class ElmoeError(Exception):
    """Base of every error the CLI renders as one line with exit code 2."""


class SpecError(ElmoeError):
    """A spec file or value is invalid: the message names the file, the field and the fix."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        self.path = path
        self.field = field
        where = ""
        if path:
            where += f"{path}: "
        if field:
            where += f"field '{field}': "
        super().__init__(f"{where}{message}")


class KnobError(ElmoeError):
    """A knob or override value is invalid (unknown key, wrong type, out of range)."""
