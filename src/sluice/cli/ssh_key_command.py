"""`sluice access ssh-key GRANT`: the key and certificate of an SSH grant, written where `ssh` takes
them, and the command line that logs in."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.client import ApiClient
from sluice.cli.options import TokenOpt, UrlOpt
from sluice.cli.output import print_line
from sluice.domain.errors import InvalidInput

DEFAULT_FOLDER = Path("~/.ssh/sluice")


def ssh_key_command(
    grant_id: str,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where to write the key and certificate (made 0700).")
    ] = DEFAULT_FOLDER,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Write an SSH grant's private key and certificate (mode 0600) and print the `ssh` command."""
    with ApiClient.from_options(url, token) as api:
        item = api.get(f"/access/{grant_id}")
    connection = item.get("connection") or {}
    if not item.get("private_key") or connection.get("kind") != "ssh":
        raise InvalidInput(f"grant {grant_id} is not an SSH grant: it has no certificate")
    target = folder.expanduser()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, certificate = target / grant_id, target / f"{grant_id}-cert.pub"
    for path, text in ((key, item["private_key"]), (certificate, connection["certificate"] + "\n")):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "w") as out:
            out.write(text)
        path.chmod(0o600)
    print_line(ssh_command(connection, key, certificate))


def ssh_command(item: dict[str, object], key: Path, certificate: Path) -> str:
    words = ["ssh", "-i", str(key), "-o", f"CertificateFile={certificate}", "-o", "IdentitiesOnly=yes"]
    if str(item.get("port", 22)) != "22":
        words += ["-p", str(item["port"])]
    words.append(f"{item['username']}@{item['host']}")
    return shlex.join(words)
