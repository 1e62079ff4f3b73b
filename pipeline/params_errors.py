"""params.yaml's validation errors as one line: the key, what is wrong, and what is allowed there (the fields of
the schema at that place for an unknown key). `CrossError` is how a check across several keys (Params._cross) names
the key it blames.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ValidationError


class CrossError(ValueError):
    def __init__(self, loc: list[str], msg: str):
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _model_in(tp: Any) -> Any:
    """Unwrap Optional[...] and dict[str, ...] down to a model class, if there is one."""
    while not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        args = [a for a in getattr(tp, "__args__", ()) if a is not type(None)]
        if not args:
            return None
        tp = args[-1]
    return tp


def _allowed_keys(model: type[BaseModel], loc: tuple) -> Optional[list[str]]:
    """Walk `loc` down the schema and return the fields allowed where an unknown key was found."""
    cur: Any = model
    for part in loc[:-1]:
        if isinstance(cur, type) and issubclass(cur, BaseModel) and str(part) in cur.model_fields:
            cur = cur.model_fields[str(part)].annotation
            if getattr(cur, "__origin__", None) is dict:  # the next part is a free key (a variant/dataset name)
                continue
        cur = _model_in(cur)
        if cur is None:
            return None
    cur = _model_in(cur)
    return list(cur.model_fields) if cur is not None else None


def format_error(exc: ValidationError, source: str, model: type[BaseModel]) -> str:
    """The first of pydantic's errors for `source` (validated against `model`), in one line."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, CrossError):
        return f"{source}: {'.'.join(map(str, ctx_err.loc))}: {ctx_err.msg}"
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"{source}: {key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{source}: {key}: required key is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{source}: {key}: {msg}{shown}"
