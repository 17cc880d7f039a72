"""The SDK client for each provider, and what can be known about its credentials locally.

Owns client construction (the SDK reads its own variables: keys, base URLs, regions), the
local credential check behind readiness (a variable or token file is there; never a
network call), and the non-secret provider facts that `/info` shows. Credential values
are never read here except to test that they are non-empty.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from anthropic import (
    AsyncAnthropic,
    AsyncAnthropicBedrock,
    AsyncAnthropicFoundry,
    AsyncAnthropicVertex,
    Timeout,
)

from harness_app.config import BASE_URL_ENV, Provider

ModelClient: TypeAlias = (
    AsyncAnthropic | AsyncAnthropicBedrock | AsyncAnthropicVertex | AsyncAnthropicFoundry
)

# Variables that hold or point at credentials, for any provider. `/info` lists the ones
# that are set (names only).
CREDENTIAL_ENV: Final = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_PROFILE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_PROFILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "ANTHROPIC_FOUNDRY_API_KEY",
)


def build_client(provider: Provider, *, task_timeout: float) -> ModelClient:
    """The provider's async client, configured from the environment by the SDK itself.

    `max_retries=0`: the agent loop retries, so that every retry is counted. Raises the
    SDK's error (ValueError, AnthropicError) if the environment is incomplete.
    """
    # The task's own deadline must fire first (outcome `timeout`); the HTTP timeout is a
    # backstop a little longer, with the SDK's usual connect timeout.
    timeout = Timeout(task_timeout + 5.0, connect=5.0)
    if provider is Provider.BEDROCK:
        return AsyncAnthropicBedrock(max_retries=0, timeout=timeout)
    if provider is Provider.VERTEX:
        return AsyncAnthropicVertex(max_retries=0, timeout=timeout)
    if provider is Provider.FOUNDRY:
        return AsyncAnthropicFoundry(max_retries=0, timeout=timeout)
    # anthropic and gateway: ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN / ANTHROPIC_BASE_URL.
    return AsyncAnthropic(max_retries=0, timeout=timeout)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def can_stream(provider: Provider) -> bool:
    """Whether the client can decode the provider's stream in this image: Bedrock streams
    AWS event-stream frames, which the SDK decodes with botocore (`anthropic[bedrock]`)."""
    return provider is not Provider.BEDROCK or _installed("botocore")


@dataclass(frozen=True)
class CredentialCheck:
    present: bool
    reason: str  # why not, or which source was found


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def _file(env: Mapping[str, str], name: str) -> CredentialCheck | None:
    """None if `name` is unset; else whether the file it names is readable."""
    path = env.get(name, "").strip()
    if not path:
        return None
    if os.access(path, os.R_OK) and os.path.isfile(path):
        return CredentialCheck(True, name)
    return CredentialCheck(False, f"{name} names {path!r}, which is not a readable file")


def check_credentials(provider: Provider, env: Mapping[str, str]) -> CredentialCheck:
    """Whether credentials for `provider` are present, by looking only at variables and
    files (files may appear or rotate, so this runs on every readiness probe)."""
    if provider in (Provider.ANTHROPIC, Provider.GATEWAY):
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE"):
            if _set(env, name):
                return CredentialCheck(True, name)
        if _set(env, "ANTHROPIC_FEDERATION_RULE_ID") and _set(env, "ANTHROPIC_ORGANIZATION_ID"):
            if _set(env, "ANTHROPIC_IDENTITY_TOKEN"):
                return CredentialCheck(True, "ANTHROPIC_IDENTITY_TOKEN")
            token_file = _file(env, "ANTHROPIC_IDENTITY_TOKEN_FILE")
            if token_file is not None:
                return token_file
        return CredentialCheck(
            False,
            "no credentials: set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN (or workload"
            " identity federation: ANTHROPIC_FEDERATION_RULE_ID, ANTHROPIC_ORGANIZATION_ID,"
            " ANTHROPIC_IDENTITY_TOKEN_FILE)",
        )
    if provider is Provider.BEDROCK:
        if _set(env, "AWS_BEARER_TOKEN_BEDROCK"):
            return CredentialCheck(True, "AWS_BEARER_TOKEN_BEDROCK")
        if not _installed("botocore"):
            return CredentialCheck(
                False,
                "no credentials: set AWS_BEARER_TOKEN_BEDROCK (SigV4 with AWS credentials"
                " needs botocore, which this image does not include)",
            )
        web_identity = _file(env, "AWS_WEB_IDENTITY_TOKEN_FILE")
        if web_identity is not None:
            return web_identity
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_PROFILE",
        ):
            if _set(env, name):
                return CredentialCheck(True, name)
        return CredentialCheck(False, "no AWS credentials in the environment")
    if provider is Provider.VERTEX:
        if not _installed("google.auth"):
            return CredentialCheck(False, "google-auth is not installed (anthropic[vertex])")
        key_file = _file(env, "GOOGLE_APPLICATION_CREDENTIALS")
        # Unset: Application Default Credentials from the metadata server (GKE Workload
        # Identity), which only a network call could confirm.
        return key_file or CredentialCheck(True, "application default credentials")
    if _set(env, "ANTHROPIC_FOUNDRY_API_KEY"):
        return CredentialCheck(True, "ANTHROPIC_FOUNDRY_API_KEY")
    return CredentialCheck(
        False,
        "no credentials: set ANTHROPIC_FOUNDRY_API_KEY (Entra ID tokens are not supported"
        " by this harness)",
    )


def public_url(url: str) -> str:
    """`url` without userinfo, query or fragment, which may carry secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def provider_info(provider: Provider, env: Mapping[str, str]) -> dict[str, object]:
    """Non-secret facts about the provider setup: endpoint, region, project, resource and
    the names of the credential variables that are set."""
    info: dict[str, object] = {}
    base_url = env.get(BASE_URL_ENV[provider], "").strip()
    if base_url:
        info["base_url"] = public_url(base_url)
    if provider is Provider.BEDROCK:
        info["region"] = env.get("AWS_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "")
    if provider is Provider.VERTEX:
        info["region"] = env.get("CLOUD_ML_REGION", "").strip()
        if _set(env, "ANTHROPIC_VERTEX_PROJECT_ID"):
            info["project"] = env["ANTHROPIC_VERTEX_PROJECT_ID"].strip()
    if provider is Provider.FOUNDRY and _set(env, "ANTHROPIC_FOUNDRY_RESOURCE"):
        info["resource"] = env["ANTHROPIC_FOUNDRY_RESOURCE"].strip()
    info["credential_env"] = [name for name in CREDENTIAL_ENV if _set(env, name)]
    return info
