"""The OpenID Provider as Sluice sees it: its discovery document, its signing keys and its endpoints.

Both documents are cached in the process. The key set is fetched again when a token names a key id
that is not in it (the provider rotated its keys), at most once per `refetch_cooldown` seconds, so a
stream of forged key ids cannot turn into a stream of requests to the provider."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from sluice.domain.errors import SluiceError
from sluice.services.signin.settings import SignInSettings

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT_SECONDS = 10.0


class ProviderError(SluiceError):
    """The provider could not be reached or answered something unusable."""

    status = 502
    title = "Identity provider error"
    slug = "identity-provider-error"


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    device_authorization_endpoint: str | None
    code_challenge_methods: tuple[str, ...]

    @classmethod
    def parse(cls, document: Any, configured_issuer: str) -> ProviderMetadata:
        if not isinstance(document, dict):
            raise ProviderError("the provider's discovery document is not a JSON object")
        issuer = document.get("issuer")
        # The issuer in the document must be the one configured (OpenID Discovery 4.3); a trailing
        # slash typed in the setting is forgiven, and the document's form is what tokens must carry.
        if not isinstance(issuer, str) or issuer.rstrip("/") != configured_issuer.rstrip("/"):
            raise ProviderError(
                f"the discovery document names the issuer {issuer!r}, not {configured_issuer!r}; "
                "set SLUICE_OIDC_ISSUER to the provider's issuer exactly"
            )
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)]
        if missing:
            raise ProviderError(f"the provider's discovery document lacks {', '.join(missing)}")
        return cls(
            issuer=issuer,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
            userinfo_endpoint=document.get("userinfo_endpoint") or None,
            device_authorization_endpoint=document.get("device_authorization_endpoint") or None,
            code_challenge_methods=tuple(document.get("code_challenge_methods_supported") or ()),
        )


class OpenIdProvider:
    """One provider, shared by every request of a server process (thread-safe)."""

    def __init__(
        self,
        settings: SignInSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        metadata_ttl: float = 3600.0,
        keys_ttl: float = 3600.0,
        refetch_cooldown: float = 10.0,
    ) -> None:
        self.settings = settings
        self._http = httpx.Client(timeout=TIMEOUT_SECONDS, transport=transport, follow_redirects=False)
        self._monotonic = monotonic
        self._metadata_ttl = metadata_ttl
        self._keys_ttl = keys_ttl
        self._refetch_cooldown = refetch_cooldown
        self._lock = threading.Lock()
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self.key_fetches = 0  # how often the key set was fetched; shown by tests and useful in a debugger

    def close(self) -> None:
        self._http.close()

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            now = self._monotonic()
            if self._metadata is None or now - self._metadata[0] > self._metadata_ttl:
                url = self.settings.issuer.rstrip("/") + DISCOVERY_PATH
                self._metadata = (now, ProviderMetadata.parse(self._get_json(url), self.settings.issuer))
            return self._metadata[1]

    def key_set(self, kid: str | None) -> KeySet:
        """The provider's keys, fetched again when `kid` is not among them (and not fetched too
        recently) or the cache is old."""
        jwks_uri = self.metadata().jwks_uri
        with self._lock:
            now = self._monotonic()
            if self._keys is not None:
                fetched_at, keys = self._keys
                current = now - fetched_at <= self._keys_ttl and _has_kid(keys, kid)
                if current or now - fetched_at < self._refetch_cooldown:
                    return keys
            try:
                keys = KeySet.import_key_set(self._get_json(jwks_uri))
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ProviderError(f"the provider's key set at {jwks_uri} is not usable: {exc}") from exc
            self.key_fetches += 1
            self._keys = (now, keys)
            return keys

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST to the token endpoint with the client's credentials (client_secret_basic); the status
        and the JSON answer, errors included (the device grant reads them)."""
        url = self.metadata().token_endpoint
        auth = (self.settings.client_id, self.settings.client_secret)
        return self._post(url, form, auth)

    def device_authorization(self) -> dict[str, Any]:
        url = self.metadata().device_authorization_endpoint
        if not url:
            raise ProviderError("the provider does not offer the device authorization grant")
        auth = (self.settings.client_id, self.settings.client_secret)
        status, body = self._post(url, {"scope": " ".join(self.settings.scopes)}, auth)
        if status != 200:
            raise ProviderError(f"the provider refused a device authorization: {_oauth_error(body)}")
        return body

    def userinfo(self, access_token: str) -> dict[str, Any]:
        url = self.metadata().userinfo_endpoint
        if not url:
            return {}
        try:
            response = self._http.get(url, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach the provider's userinfo endpoint: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"the provider's userinfo endpoint answered {response.status_code}")
        body = _json(response, url)
        if not isinstance(body, dict):
            raise ProviderError("the provider's userinfo answer is not a JSON object")
        return body

    def _get_json(self, url: str) -> Any:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach the identity provider at {url}: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"the identity provider answered {response.status_code} for {url}")
        return _json(response, url)

    def _post(self, url: str, form: dict[str, str], auth: tuple[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            response = self._http.post(url, data=form, auth=auth, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach the identity provider at {url}: {exc}") from exc
        body = _json(response, url)
        if not isinstance(body, dict):
            raise ProviderError(f"the identity provider's answer from {url} is not a JSON object")
        return response.status_code, body


def _has_kid(keys: KeySet, kid: str | None) -> bool:
    return any(key.kid == kid for key in keys.keys) if kid else len(keys.keys) == 1


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"the identity provider's answer from {url} is not JSON") from exc


def _oauth_error(body: dict[str, Any]) -> str:
    error = str(body.get("error") or "unknown error")
    description = body.get("error_description")
    return f"{error} ({description})" if description else error
