"""Errors a user can act on. The CLI prints them as one line (no traceback) and exits with `exit_code`."""

from __future__ import annotations


class NetpipeError(Exception):
    """A failure caused by the user's input, files or environment, not by a bug."""

    exit_code = 1


class ParamsError(NetpipeError):
    """params.yaml is missing, malformed, or holds an unknown key, a wrong type or an impossible value."""

    exit_code = 2


class DataError(NetpipeError):
    """Input data is missing or corrupt; the message names the file."""


class InputError(NetpipeError):
    """A file given on the command line cannot be used (predict's images, a model file)."""


class TrainingDiverged(NetpipeError):
    """The loss became NaN or infinite."""
