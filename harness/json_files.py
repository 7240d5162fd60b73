"""Reading the suite's JSON input files (named configs, search spaces, verdict specs, the targets file)
with the one-line errors of harness/errors.py: one place decides what a missing, unreadable or
unparsable file reports."""

from __future__ import annotations

import json
from typing import Any

from harness.errors import UserError


def read(path: str, what: str, fix: str = "") -> Any:
    """The JSON value in the file at `path`. `what` names the file in the error
    (``config submissions/x/configs/y.json``, ``--search_space=s.json``); `fix` is appended
    after a semicolon (how to mend it)."""
    hint = f"; {fix}" if fix else ""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"cannot parse {what}: {e.msg} at line {e.lineno} column {e.colno}{hint}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {what}: {getattr(e, 'strerror', None) or e}{hint}") from None
