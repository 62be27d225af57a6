"""From an account to its bare adapter. Only `resilience/` imports this (an import
contract holds it), and wraps what it gets in the breaker, retries and the shared limits.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from social_pipelines.errors import ConfigError
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import Session
from social_pipelines.platforms.capabilities import Adapter
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.platforms.http import Door


def connect(
    account: AccountBase,
    *,
    variables: Mapping[str, str],
    door: Door,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    session: Session | None = None,
) -> Adapter:
    """The bare adapter of `account`, every request of it through `door`."""
    try:
        spec = spec_for(account.platform)
    except KeyError as error:
        raise ConfigError(f"account {account.name!r}: {error.args[0]}") from None
    if not isinstance(account, spec.account_model):
        raise ConfigError(
            f"account {account.name!r}: a {type(account).__name__} is not a "
            f"{spec.account_model.__name__}, the account model of {spec.name}"
        )
    if spec.authenticator is not None and session is None:
        raise ConfigError(f"account {account.name!r}: {spec.name} needs a session to connect")
    return spec.connect(
        account,
        variables=variables,
        door=door,
        timeout=timeout,
        transport=transport,
        session=session,
    )
