"""From an account's configuration to a connected `Platform`: one entry per platform."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from social_pipelines.campaigns import AccountConfig
from social_pipelines.errors import ConfigError
from social_pipelines.platforms.base import Platform
from social_pipelines.platforms.mastodon import MastodonPlatform

Factory = Callable[[AccountConfig, SecretStr, float], Platform]


def _mastodon(account: AccountConfig, token: SecretStr, timeout: float) -> Platform:
    return MastodonPlatform(account.instance_url, token.get_secret_value(), timeout=timeout)


FACTORIES: dict[str, Factory] = {"mastodon": _mastodon}


def connect(account: AccountConfig, token: SecretStr, *, timeout: float) -> Platform:
    try:
        factory = FACTORIES[account.platform]
    except KeyError:
        raise ConfigError(
            f"account {account.name!r}: no adapter for platform {account.platform!r}; "
            f"available: {', '.join(sorted(FACTORIES))}"
        ) from None
    return factory(account, token, timeout)
