"""Delivery ids and account identities: what makes one delivery the same as another."""

from __future__ import annotations

import re

import pytest

from social_pipelines.models import DeliveryKind, Identity, delivery_id

BASE = ("mastodon", "109@social.example", DeliveryKind.REPLY, "post-1")


def test_same_inputs_same_id() -> None:
    first = delivery_id(*BASE)
    assert delivery_id(*BASE) == first
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_a_plain_string_kind_gives_the_same_id() -> None:
    platform, account, _, subject = BASE
    assert delivery_id(platform, account, "reply", subject) == delivery_id(*BASE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changed",
    [
        ("bluesky", *BASE[1:]),
        (BASE[0], "110@social.example", *BASE[2:]),
        (*BASE[:2], DeliveryKind.PUBLISH, BASE[3]),
        (*BASE[:3], "post-2"),
    ],
    ids=["platform", "account", "kind", "subject"],
)
def test_each_input_changes_the_id(changed: tuple) -> None:
    assert delivery_id(*changed) != delivery_id(*BASE)


def test_parts_do_not_run_into_each_other() -> None:
    assert delivery_id("mastodon", "ab", DeliveryKind.REPLY, "c") != delivery_id(
        "mastodon", "a", DeliveryKind.REPLY, "bc"
    )


def test_the_stable_key_is_the_account_id_and_the_instance_domain() -> None:
    one = Identity(platform="mastodon", account_id="109", handle="brand", domain="social.example")
    assert one.stable_key == "109@social.example"
    assert Identity(platform="mastodon", account_id="109", handle="brand").stable_key == "109"
    # The handle is not part of it: a renamed account keeps its delivery ids.
    renamed = one.model_copy(update={"handle": "brand_new"})
    assert renamed.stable_key == one.stable_key
