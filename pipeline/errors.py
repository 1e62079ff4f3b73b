"""Errors a user can act on. The CLI prints them as one line (no traceback) and exits with `exit_code`."""

from __future__ import annotations

import re


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


def first_line(exc: BaseException, limit: int = 300, *, with_type: bool = False, sentence: bool = False) -> str:
    """The gist of an exception for a one-line message: the first line of its text (without a leading
    "[file.cc:123] " location, as gloo writes it), or only its first sentence; prefixed with the exception's type
    name if `with_type`; the type name alone when there is no text. At most `limit` characters."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip())
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0].strip()
    if sentence:
        line = line.split(". ")[0]
    return (f"{type(exc).__name__}: {line}" if with_type else line)[:limit]
