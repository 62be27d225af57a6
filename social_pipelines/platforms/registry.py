"""From an account's configuration to a connected `Platform`: one entry per platform."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from social_pipelines.campaigns import AccountConfig
from social_pipelines.errors import ConfigError
from social_pipelines.platforms.base import Platform
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.platforms.mastodon import MastodonPlatform

# Called after every request with what its answer said about the budget (None: nothing,
# or no answer at all), so the permit taken before it can be settled.
RateLimitObserver = Callable[[str, RateLimitInfo | None], None]
RequestHook = Callable[[str], None]
Factory = Callable[
    [AccountConfig, SecretStr, float, RateLimitObserver | None, RequestHook | None], Platform
]


def _mastodon(
    account: AccountConfig,
    token: SecretStr,
    timeout: float,
    on_rate_limit: RateLimitObserver | None,
    before_request: RequestHook | None,
) -> Platform:
    return MastodonPlatform(
        account.instance_url,
        token.get_secret_value(),
        timeout=timeout,
        on_rate_limit=on_rate_limit,
        before_request=before_request,
    )


FACTORIES: dict[str, Factory] = {"mastodon": _mastodon}


def connect(
    account: AccountConfig,
    token: SecretStr,
    *,
    timeout: float,
    on_rate_limit: RateLimitObserver | None = None,
    before_request: RequestHook | None = None,
) -> Platform:
    """The bare adapter. Everything outside `resilience/` gets it wrapped in its guard."""
    try:
        factory = FACTORIES[account.platform]
    except KeyError:
        raise ConfigError(
            f"account {account.name!r}: no adapter for platform {account.platform!r}; "
            f"available: {', '.join(sorted(FACTORIES))}"
        ) from None
    return factory(account, token, timeout, on_rate_limit, before_request)
