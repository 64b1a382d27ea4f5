"""The AWS connector's configuration, its boto3 clients, and AWS errors turned into TargetErrors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from sluice.connectors.base import SecretRef
from sluice.domain.errors import InvalidInput, TargetError

# Error codes worth trying again: throttling and AWS's own trouble. Every other code (access denied, a
# resource that is not there, a request AWS finds invalid) stays wrong until someone changes something.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ConcurrentModificationException",
        "ConflictException",
    }
)

T = TypeVar("T")


class AssumeRole(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", max_length=2048)
    external_id: str | None = Field(default=None, max_length=1224)
    session_name: str = Field(default="sluice", pattern=r"^[\w+=,.@-]{2,64}$")


class AwsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    profile: str | None = None  # a named profile; default: boto3's usual sources (env, role, files)
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    assume_role: AssumeRole | None = None
    endpoint_url: str | None = Field(default=None, max_length=500)  # VPC endpoints, or an emulator
    instance_arn: str | None = None  # IAM Identity Center instance; found when there is exactly one
    identity_store_id: str | None = None
    portal_url: str | None = None  # default https://{identity store id}.awsapps.com/start
    permission_sets: list[str] | None = Field(default=None, max_length=500)  # offered; default all
    groups: list[str] = Field(default_factory=list, max_length=500)  # Identity Center groups offered
    ledger_path: str = Field(default="/sluice", pattern=r"^/[A-Za-z0-9_./-]{1,200}$")
    assignment_timeout_seconds: float = Field(default=60, gt=0, le=900)
    connect_timeout_seconds: float = Field(default=5, gt=0)
    timeout_seconds: float = Field(default=20, gt=0)


def aws_call(what: str, call: Callable[..., T], /, **kwargs: Any) -> T:
    """`call(**kwargs)`, with AWS's errors as TargetErrors that say whether trying again may help."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        raise target_error(what, exc) from exc
    except BotoCoreError as exc:  # no connection, a timeout, a broken answer
        raise TargetError(f"{what}: {exc}", retryable=True) from exc


def pages(call: Any, key: str, what: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged AWS list call (the `NextToken` kind)."""
    token: str | None = None
    while True:
        asked = {**kwargs, **({"NextToken": token} if token else {})}
        page = aws_call(what, call, **asked)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def target_error(what: str, exc: ClientError) -> TargetError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    retryable = code in RETRYABLE_CODES or status >= 500 or status == 429
    return TargetError(
        f"{what}: {code}: {error.get('Message', '')}".rstrip(": "), retryable=retryable, code=code
    )


def error_code(exc: TargetError) -> str:
    return str(exc.extra.get("code", ""))


class AwsClients:
    """The boto3 clients the connector uses, made on first use from one session."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config

    @cached_property
    def _session(self) -> boto3.Session:
        c = self.config
        keys: dict[str, str] = {}
        try:
            if c.access_key_id and c.secret_access_key:
                keys = {
                    "aws_access_key_id": c.access_key_id.resolve("access_key_id"),
                    "aws_secret_access_key": c.secret_access_key.resolve("secret_access_key"),
                }
        except InvalidInput as exc:
            raise TargetError(exc.detail, retryable=False) from exc
        session = boto3.Session(profile_name=c.profile, region_name=c.region, **keys)
        if c.assume_role is None:
            return session
        asked: dict[str, Any] = {"RoleArn": c.assume_role.arn, "RoleSessionName": c.assume_role.session_name}
        if c.assume_role.external_id:
            asked["ExternalId"] = c.assume_role.external_id
        sts = session.client("sts", endpoint_url=c.endpoint_url, config=self._botocore)
        found = aws_call("assume the admin role", sts.assume_role, **asked)["Credentials"]
        return boto3.Session(
            region_name=c.region,
            aws_access_key_id=found["AccessKeyId"],
            aws_secret_access_key=found["SecretAccessKey"],
            aws_session_token=found["SessionToken"],
        )

    @cached_property
    def _botocore(self) -> Config:
        return Config(
            connect_timeout=self.config.connect_timeout_seconds,
            read_timeout=self.config.timeout_seconds,
            retries={"max_attempts": 2, "mode": "standard"},
        )

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.config.endpoint_url, config=self._botocore)

    @cached_property
    def organizations(self) -> Any:
        return self.client("organizations")

    @cached_property
    def sso_admin(self) -> Any:
        return self.client("sso-admin")

    @cached_property
    def identity_store(self) -> Any:
        return self.client("identitystore")

    @cached_property
    def ssm(self) -> Any:
        return self.client("ssm")
