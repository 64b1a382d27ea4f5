"""A reference endpoint for Sluice's custom HTTP connector, on the standard library alone.

It is two things in one process, as a real integration would be:

* a toy target system, a document store: teams (containers) hold documents (resources); accounts log
  in with HTTP Basic auth to `GET`/`PUT /app/docs/{team}/{doc}`, or open a session with
  `POST /app/login` and use it with `GET /app/session`;
* the Sluice protocol at `POST /sluice/v1/{operation}`: status, list-resources, grant, revoke,
  list-managed. Requests are checked for their HMAC signature and timestamp; answers to grant and revoke
  are kept by idempotency key and replayed when a retry comes.

Run it: `python examples/http_connector/server.py --port 8443 --secret-file secret.txt --cert c.pem
--key k.pem` (or `python -m examples.http_connector …` from the repository root). Without --cert it
serves plain HTTP, and then only on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

MAX_SKEW_SECONDS = 300
REPLAY_SECONDS = 24 * 3600
MAX_BODY = 1 << 20
DEFAULT_INVENTORY: dict[str, Any] = {
    "billing": {
        "tags": {"env": "prod", "pii": "true"},
        "docs": {"invoices": "Q3 invoices", "refunds": "none"},
    },
    'o\'brien; "ops" team': {"tags": {"env": "dev"}, "docs": {'run;book "v2"': "restart it"}},
}
PERMISSIONS = {"container": ("read", "write", "admin"), "resource": ("read", "write", "admin")}


class Refused(Exception):
    def __init__(self, status: int, error: str, retryable: bool = False) -> None:
        super().__init__(error)
        self.status, self.error, self.retryable = status, error, retryable


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000)


class DocumentStore:
    """The toy target, and its side of the Sluice protocol. One lock guards all of it."""

    def __init__(self, inventory: dict[str, Any]) -> None:
        self.lock = threading.Lock()
        self.docs = {
            (team, doc): text for team, spec in inventory.items() for doc, text in spec["docs"].items()
        }
        self.teams = {team: dict(spec.get("tags", {})) for team, spec in inventory.items()}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, str] = {}  # token -> principal

    # --- the Sluice protocol

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "problems": []}

    def list_resources(self, body: dict[str, Any]) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        for team, tags in sorted(self.teams.items()):
            found.append({"type": "container", "name": team, "path": [team], "parent": None, "tags": tags})
        for team, doc in sorted(self.docs):
            found.append({"type": "resource", "name": doc, "path": [team, doc], "parent": [team], "tags": {}})
        return {"resources": found}

    def grant(self, body: dict[str, Any]) -> dict[str, Any]:
        resource, permission = body.get("resource") or {}, body.get("permission")
        path = tuple(resource.get("path") or ())
        kind = resource.get("type")
        if permission not in PERMISSIONS.get(kind, ()):
            raise Refused(422, f"cannot grant {permission!r} on a {kind!r}")
        if (kind == "container" and path[:1] not in {(t,) for t in self.teams}) or (
            kind == "resource" and path not in self.docs
        ):
            raise Refused(404, "no such resource")
        if not body.get("secret"):
            raise Refused(422, "this system logs in with a password: send one")
        principal = str(body["principal"])
        with self.lock:
            account = self.accounts.get(principal)
            if account is not None and _owner(account) != (
                body["grant_id"],
                body.get("integration"),
                body.get("installation"),
            ):
                raise Refused(409, "that principal belongs to another grant")
            salt = secrets.token_bytes(16)
            self.accounts[principal] = {
                "integration": body.get("integration"),
                "installation": body.get("installation"),
                "grant_id": body["grant_id"],
                "salt": salt,
                "hash": _hash_password(body["secret"], salt),
                "kind": kind,
                "path": path,
                "permission": permission,
                "ends_at": body.get("ends_at"),
            }
        return {"connection": {"url": "/app/docs/" + "/".join(path), "username": principal}}

    def revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        principal = str(body.get("principal"))
        with self.lock:
            account = self.accounts.get(principal)
            if account is None:
                return {"revoked": False}  # already gone: that is success
            if body.get("grant_id") and account["grant_id"] != body["grant_id"]:
                raise Refused(409, "that principal belongs to another grant")
            if account["installation"] not in (None, body.get("installation")):
                raise Refused(409, "that principal belongs to another installation of Sluice")
            self.remove_account(principal)
        return {"revoked": True}

    def list_managed(self, body: dict[str, Any]) -> dict[str, Any]:
        # Only the accounts this integration of this installation made (or accounts made before calls
        # named their installation): two integrations, or two installations, may share one endpoint.
        with self.lock:
            return {
                "principals": [
                    {"principal": p, "grant_id": a["grant_id"]}
                    for p, a in self.accounts.items()
                    if a["integration"] == body.get("integration")
                    and a["installation"] in (None, body.get("installation"))
                ]
            }

    # --- the toy system itself

    def remove_account(self, principal: str) -> None:
        """Caller holds the lock. Ends the account and every session it has open."""
        self.accounts.pop(principal, None)
        for token in [t for t, p in self.sessions.items() if p == principal]:
            del self.sessions[token]

    def authenticate(self, principal: str, password: str) -> dict[str, Any] | None:
        with self.lock:
            account = self.accounts.get(principal)
        if account is None or not hmac.compare_digest(
            account["hash"], _hash_password(password, account["salt"])
        ):
            return None
        ends = account["ends_at"]
        if ends and datetime.fromisoformat(ends) <= datetime.now(UTC):
            return None  # a second lock: the account stops working at its end time even if never revoked
        return account

    def allows(self, account: dict[str, Any], path: tuple[str, ...], write: bool) -> bool:
        covered = path[: len(account["path"])] == account["path"]
        return covered and (not write or account["permission"] in ("write", "admin"))


def _owner(account: dict[str, Any]) -> tuple[Any, Any, Any]:
    return account["grant_id"], account["integration"], account["installation"]


OPERATIONS = {
    "status": DocumentStore.status,
    "list-resources": DocumentStore.list_resources,
    "grant": DocumentStore.grant,
    "revoke": DocumentStore.revoke,
    "list-managed": DocumentStore.list_managed,
}


class Endpoint(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], *, secret: str, admin_token: str, store: DocumentStore
    ) -> None:
        super().__init__(address, Handler)
        self.secret, self.admin_token, self.store = secret, admin_token, store
        self.replies: dict[str, tuple[float, str, int, bytes]] = {}  # key -> (at, body hash, status, reply)
        self.replies_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Endpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet; a real endpoint would log
        return

    def _send(self, status: int, payload: dict[str, Any] | bytes) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise Refused(413, "body too large")
        return self.rfile.read(length)

    def do_POST(self) -> None:
        try:
            if self.path.startswith("/sluice/v1/"):
                self._protocol(self.path.removeprefix("/sluice/v1/"))
            elif self.path == "/app/login":
                self._body()
                account_name = self._basic_auth()
                token = secrets.token_urlsafe(16)
                with self.server.store.lock:
                    self.server.store.sessions[token] = account_name
                self._send(200, {"token": token})
            else:
                raise Refused(404, "not found")
        except Refused as exc:
            self._send(exc.status, {"error": exc.error, "retryable": exc.retryable})

    def _protocol(self, operation: str) -> None:
        body = self._body()
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise Refused(404, f"unknown operation {operation!r}")
        stamp, key = self.headers.get("Sluice-Timestamp", ""), self.headers.get("Idempotency-Key", "")
        if not key or not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW_SECONDS:
            raise Refused(401, "missing idempotency key, or timestamp missing or too far from now")
        message = f"v1\n{stamp}\n{key}\n{operation}\n".encode() + body
        expected = "v1=" + hmac.new(self.server.secret.encode(), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("Sluice-Signature", "")):
            raise Refused(401, "bad signature")
        digest = hashlib.sha256(operation.encode() + b"\n" + body).hexdigest()
        with self.server.replies_lock:
            now = time.time()
            for old in [k for k, v in self.server.replies.items() if v[0] < now - REPLAY_SECONDS]:
                del self.server.replies[old]
            kept = self.server.replies.get(key)
        if kept is not None:
            if kept[1] != digest:
                raise Refused(422, "idempotency key reused with a different request")
            self._send(kept[2], kept[3])
            return
        try:
            reply = json.dumps(handler(self.server.store, json.loads(body or b"{}"))).encode()
        except (ValueError, KeyError, TypeError) as exc:
            raise Refused(400, f"bad request: {type(exc).__name__}") from None
        if operation in ("grant", "revoke"):
            with self.server.replies_lock:
                self.server.replies[key] = (time.time(), digest, 200, reply)
        self._send(200, reply)

    def _basic_auth(self) -> str:
        user, password = self._credentials()
        if self.server.store.authenticate(user, password) is None:
            raise Refused(401, "wrong user name or password")
        return user

    def _doc(self, write: bool) -> None:
        parts = tuple(unquote(p) for p in self.path.removeprefix("/app/docs/").split("/"))
        store = self.server.store
        account = store.authenticate(*self._credentials())
        if account is None:
            raise Refused(401, "wrong user name or password")
        if parts not in store.docs:
            raise Refused(404, "no such document")
        if not store.allows(account, parts, write):
            raise Refused(403, "not allowed")
        if write:
            with store.lock:
                store.docs[parts] = self._body().decode()
        self._send(200, {"text": store.docs[parts]})

    def _credentials(self) -> tuple[str, str]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise Refused(401, "log in with HTTP Basic auth")
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            raise Refused(401, "log in with HTTP Basic auth") from None
        return user, password

    def do_GET(self) -> None:
        try:
            if self.path.startswith("/app/docs/"):
                self._doc(write=False)
            elif self.path == "/app/session":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with self.server.store.lock:
                    principal = self.server.store.sessions.get(token)
                if principal is None:
                    raise Refused(401, "no such session")
                self._send(200, {"principal": principal})
            else:
                raise Refused(404, "not found")
        except Refused as exc:
            self._send(exc.status, {"error": exc.error, "retryable": exc.retryable})

    def do_PUT(self) -> None:
        try:
            if not self.path.startswith("/app/docs/"):
                raise Refused(404, "not found")
            self._doc(write=True)
        except Refused as exc:
            self._send(exc.status, {"error": exc.error, "retryable": exc.retryable})

    def do_DELETE(self) -> None:
        """The operator removing an account by hand: `DELETE /admin/accounts/{principal}`."""
        try:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(token, self.server.admin_token):
                raise Refused(401, "admin token needed")
            principal = unquote(self.path.removeprefix("/admin/accounts/"))
            with self.server.store.lock:
                self.server.store.remove_account(principal)
            self._send(200, {"removed": principal})
        except Refused as exc:
            self._send(exc.status, {"error": exc.error, "retryable": exc.retryable})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--secret-file", required=True, help="the HMAC secret shared with Sluice")
    parser.add_argument("--admin-token-file", help="token for DELETE /admin/accounts/…")
    parser.add_argument("--cert", help="PEM certificate (chain); without it, plain HTTP on 127.0.0.1 only")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--inventory", help="JSON: {team: {tags: {}, docs: {name: text}}}")
    args = parser.parse_args(argv)
    if not args.cert and args.host != "127.0.0.1":
        parser.error("plain HTTP is served on 127.0.0.1 only; give --cert and --key")
    inventory = json.loads(Path(args.inventory).read_text()) if args.inventory else DEFAULT_INVENTORY
    admin = (
        Path(args.admin_token_file).read_text().strip() if args.admin_token_file else secrets.token_urlsafe()
    )
    server = Endpoint(
        (args.host, args.port),
        secret=Path(args.secret_file).read_text().strip(),
        admin_token=admin,
        store=DocumentStore(inventory),
    )
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {'https' if args.cert else 'http'}://{args.host}:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
