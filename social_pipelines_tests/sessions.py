"""A session kept in memory, for adapter tests: the adapter's own authenticator logs in
and refreshes (its real requests, through the door and the test's transport); only the
keeping is simpler than `resilience/sessions.py`, which the token tests run for real."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from social_pipelines.platforms.auth import Authenticator, TokenSet
from social_pipelines.platforms.http import Door


class MemorySession:
    def __init__(
        self,
        authenticator: Authenticator,
        account: Any,
        *,
        variables: Mapping[str, str],
        door: Door,
        transport: httpx.BaseTransport | None = None,
        tokens: TokenSet | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.authenticator = authenticator
        self.account = account
        self.variables = variables
        self.tokens = tokens
        self.logins = 0
        self.refreshes = 0
        self.http = authenticator.client(account, door=door, timeout=timeout, transport=transport)

    def current(self) -> TokenSet:
        if self.tokens is None:
            self.logins += 1
            self.tokens = self.authenticator.login(
                self.account, variables=self.variables, http=self.http
            )
        return self.tokens

    def renew(self, refused: TokenSet) -> TokenSet:
        if self.tokens is not None and self.tokens.access_token != refused.access_token:
            return self.tokens
        self.refreshes += 1
        fresh = self.authenticator.refresh(
            self.account, refused, variables=self.variables, http=self.http
        )
        self.tokens = refused.merged(fresh)
        return self.tokens
