"""Print a `::add-mask::` workflow command for every credential in the kubeconfig on stdin, before
the job writes it anywhere.

GitHub masks a secret's value as a whole (and line by line), so a kubeconfig stored as a YAML
secret leaves its parts unmasked: a token, a key or an exec plugin's environment printed on its
own by kubectl, the provider or an error message would show in the log. Each credential is
registered alone, and a key's or certificate's PEM lines too (a tool may print them decoded).
A secret that is not a kubeconfig fails here, naming what is wrong without echoing it.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Iterator
from typing import Any

import yaml

CREDENTIALS = {"token", "password", "client-key-data", "client-certificate-data"}
ENCODED = {"client-key-data", "client-certificate-data"}


class NotAKubeconfig(ValueError):
    """The secret is not a kubeconfig; the message never contains its text."""


def credentials(config: Any) -> Iterator[str]:
    if not isinstance(config, dict) or not isinstance(config.get("users", []), list):
        raise NotAKubeconfig("it is not a kubeconfig (a mapping with a `users` list)")
    for entry in config.get("users") or []:
        user = (entry or {}).get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        for key in CREDENTIALS & user.keys():
            yield str(user[key])
            if key in ENCODED:
                yield from _pem_lines(str(user[key]))
        provider = user.get("auth-provider") or {}
        yield from (str(v) for v in (provider.get("config") or {}).values() if v)
        for variable in (user.get("exec") or {}).get("env") or []:
            if isinstance(variable, dict) and variable.get("value"):
                yield str(variable["value"])


def _pem_lines(encoded: str) -> Iterator[str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return
    yield from (line for line in decoded.splitlines() if line.strip() and not line.startswith("-----"))


def escaped(value: str) -> str:
    """A workflow command's data: the runner reads %25, %0D and %0A back as %, CR and LF."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def main() -> int:
    try:
        config = yaml.safe_load(sys.stdin.read())
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        print(f"error: the kubeconfig secret is not valid YAML{line}", file=sys.stderr)
        return 1
    try:
        values = sorted(
            {line for value in credentials(config) for line in value.splitlines() if line.strip()}
        )
    except NotAKubeconfig as error:
        print(f"error: the kubeconfig secret: {error}", file=sys.stderr)
        return 1
    for value in values:
        print(f"::add-mask::{escaped(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
