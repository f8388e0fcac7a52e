"""Secret configuration values: given inline, read from an environment variable or a file, never shown.

A secret key (e.g. `catalog.jdbc_password`) takes one of three forms:

    jdbc_password: {env: LAKECAST_JDBC_PASSWORD}   # an environment variable, read at load time
    jdbc_password: {file: /run/secrets/metastore}  # a file (trailing newline dropped)
    jdbc_password: hive                            # inline: fine for a local stack only

The value is a pydantic `SecretStr`: dumps show `**********`, and only the code that hands
it to a client calls `get_secret_value()`. Every resolved value is remembered so that `scrub`
can remove it from error messages and log lines wherever they come from (a JDBC error, a
command line in a traceback). `redact` masks values under secret-looking names (Spark's own
`spark.conf` entries too) and passwords inside URLs, for anything written to a table or MLflow.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, ValidationInfo

REDACTED = "**********"  # what SecretStr prints
# Names that hold secrets: secret, password, token, credential, or a `key` component
# (fs.s3a.access.key, s3_secret_access_key, api_key) but not words that merely contain it.
SECRET_NAME = re.compile(
    r"(?i)secret|passw(?:or)?d|token|credential|(?:^|[._\-])key(?:$|[._\-])|accesskey|apikey|privatekey"
)
_URL_PASSWORD = re.compile(r"(?P<pre>://[^/:@\s]+:)[^@/\s]+(?=@)")
_PARAM_SECRET = re.compile(r"(?i)(?P<pre>[?&;](?:password|passwd|secret|token)=)[^&;\s]+")
_MIN_SCRUB = 6  # shorter values (e.g. "hive") would mangle ordinary words in messages
_known: set[str] = set()


def _resolve(value: object, info: ValidationInfo) -> object:
    """Turn `{env: NAME}` / `{file: PATH}` / an inline value into the secret's text."""
    if value is None or isinstance(value, SecretStr):
        return value
    env: Mapping[str, str] = (info.context or {}).get("env", os.environ)
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in ("env", "file"):
            raise ValueError("a secret is a string, {env: VARIABLE} or {file: PATH}")
        (kind, ref), = value.items()
        if kind == "env":
            if str(ref) not in env:
                raise ValueError(f"environment variable {ref} is not set")
            text = env[str(ref)]
        else:
            try:
                text = Path(str(ref)).expanduser().read_text().rstrip("\r\n")
            except OSError as e:
                raise ValueError(f"file {ref} cannot be read ({e.strerror or e})") from None
        if not text:
            raise ValueError(f"{kind} {ref} is empty")
    elif isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise ValueError("a secret is a string, {env: VARIABLE} or {file: PATH}")
    if len(text) >= _MIN_SCRUB:
        _known.add(text)
    return text


Secret = Annotated[SecretStr, BeforeValidator(_resolve)]


def reveal(secret: SecretStr | None) -> str:
    """The secret's text for the one client that needs it ("" when unset)."""
    return secret.get_secret_value() if secret is not None else ""


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """`text` without known secret values nor passwords in URLs (user:pass@, ?password=)."""
    for value in sorted(_known, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + REDACTED, text)
    return _PARAM_SECRET.sub(lambda m: m.group("pre") + REDACTED, text)


def redact(obj: Any) -> Any:
    """A copy of a JSON-like value with secret-named entries masked and strings redacted."""
    if isinstance(obj, Mapping):
        return {k: REDACTED if is_secret_name(str(k)) and v not in (None, "") else redact(v)
                for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, SecretStr):
        return REDACTED
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


class RedactingFilter(logging.Filter):
    """Scrubs known secret values from every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


FORGOTTEN = "<a series to forget>"


def loggable_argv(argv: list[str]) -> list[str]:
    """The command line as the error log may keep it: `lakecast forget`'s series ids left out (the
    command exists so that nothing keeps them; its `forget_log` holds only a salted hash)."""
    if "forget" not in argv:
        return list(argv)
    out, hide = [], False
    for a in argv:
        if hide:
            out.append(FORGOTTEN)
            hide = False
        elif a == "--series":
            out.append(a)
            hide = True
        elif a.startswith("--series="):
            out.append(f"--series={FORGOTTEN}")
        else:
            out.append(a)
    return out
