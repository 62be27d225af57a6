"""Mastodon API entities (Account, Status, MediaAttachment, Notification, Instance) as JSON.

Shapes follow Mastodon 4.3 field for field, ids as strings, so that real client libraries
(Mastodon.py is the contract test) parse them and project code written against the sandbox
works against a real instance. `base_url` is where this server is reachable (links must
resolve); `domain` is the stable identity (`acct`, `uri`).
"""

from __future__ import annotations

from typing import Any

from social_pipelines.sandbox.accounts import Account, Accounts
from social_pipelines.sandbox.content import Mention, hashtags_in, mentions_in, render_html
from social_pipelines.sandbox.ids import iso_ms
from social_pipelines.sandbox.media import (
    DESCRIPTION_LIMIT,
    IMAGE_MATRIX_LIMIT,
    IMAGE_SIZE_LIMIT,
    PLACEHOLDER_BLURHASH,
    SUPPORTED_MIME_TYPES,
    meta,
)
from social_pipelines.sandbox.notifications import NotificationRecord
from social_pipelines.sandbox.statuses import MediaRecord, Statuses, StatusRecord

MASTODON_VERSION = "4.3.0"
MASTODON_API_VERSION = 2
MAX_MEDIA_ATTACHMENTS = 4
MISSING_AVATAR = "/avatars/original/missing.png"
MISSING_HEADER = "/headers/original/missing.png"

Json = dict[str, Any]


class Entities:
    def __init__(
        self, accounts: Accounts, statuses: Statuses, domain: str, max_characters: int
    ) -> None:
        self.accounts = accounts
        self.statuses = statuses
        self.domain = domain
        self.max_characters = max_characters

    # Account

    def account(self, account: Account, base_url: str, *, credentials: bool = False) -> Json:
        count, latest = self.statuses.count_by_account(account.id)
        note_html = render_html(account.note, base_url, lambda _: None) if account.note else ""
        entity: Json = {
            "id": str(account.id),
            "username": account.username,
            "acct": account.username,
            "display_name": account.display_name,
            "locked": False,
            "bot": account.bot,
            "discoverable": True,
            "indexable": True,
            "group": False,
            "created_at": iso_ms(account.created_at_ms),
            "note": note_html,
            "url": f"{base_url}/@{account.username}",
            "uri": f"https://{self.domain}/users/{account.username}",
            "avatar": base_url + MISSING_AVATAR,
            "avatar_static": base_url + MISSING_AVATAR,
            "header": base_url + MISSING_HEADER,
            "header_static": base_url + MISSING_HEADER,
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": count,
            "last_status_at": iso_ms(latest)[:10] if latest is not None else None,
            "hide_collections": False,
            "noindex": False,
            "emojis": [],
            "roles": [],
            "fields": [],
        }
        if credentials:
            entity["source"] = {
                "privacy": "public",
                "sensitive": False,
                "language": "en",
                "note": account.note,
                "fields": [],
                "follow_requests_count": 0,
                "hide_collections": False,
                "discoverable": True,
                "indexable": True,
            }
            entity["role"] = {
                "id": "-99",
                "name": "",
                "permissions": "0",
                "color": "",
                "highlighted": False,
            }
        return entity

    # Status

    def status(self, record: StatusRecord, base_url: str, viewer_id: int | None) -> Json:
        return self.status_list([record], base_url, viewer_id)[0]

    def status_list(
        self, records: list[StatusRecord], base_url: str, viewer_id: int | None
    ) -> list[Json]:
        ids = [record.id for record in records]
        media = self.statuses.media_of(ids)
        replies = self.statuses.replies_counts(ids)
        authors: dict[int, Json] = {}
        rendered = []
        for record in records:
            if record.account_id not in authors:
                author = self.accounts.by_id(record.account_id)
                assert author is not None
                authors[record.account_id] = self.account(author, base_url)
            author_json = authors[record.account_id]
            rendered.append(
                self._status(
                    record,
                    author_json,
                    media.get(record.id, []),
                    replies.get(record.id, 0),
                    base_url,
                    viewer_id,
                )
            )
        return rendered

    def _status(
        self,
        record: StatusRecord,
        author: Json,
        media: list[MediaRecord],
        replies: int,
        base_url: str,
        viewer_id: int | None,
    ) -> Json:
        username = author["username"]
        mentions = self._mentions(record.text, base_url)
        return {
            "id": str(record.id),
            "created_at": iso_ms(record.created_at_ms),
            "in_reply_to_id": _sid(record.in_reply_to_id),
            "in_reply_to_account_id": _sid(record.in_reply_to_account_id),
            "sensitive": record.sensitive,
            "spoiler_text": record.spoiler_text,
            "visibility": record.visibility,
            "language": record.language,
            "uri": f"https://{self.domain}/users/{username}/statuses/{record.id}",
            "url": f"{base_url}/@{username}/{record.id}",
            "replies_count": replies,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "pinned": False if viewer_id == record.account_id else None,
            "content": render_html(record.text, base_url, self._mention_url(base_url)),
            "filtered": [],
            "reblog": None,
            "account": author,
            "media_attachments": [self.media(item, base_url) for item in media],
            "mentions": mentions,
            "tags": [
                {"name": name, "url": f"{base_url}/tags/{name}"}
                for name in hashtags_in(record.text)
            ],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _mention_url(self, base_url: str) -> Any:
        def url(mention: Mention) -> str | None:
            if mention.domain not in (None, self.domain):
                return None
            account = self.accounts.by_username(mention.username)
            return None if account is None else f"{base_url}/@{account.username}"

        return url

    def _mentions(self, text: str, base_url: str) -> list[Json]:
        found = []
        for mention in mentions_in(text):
            if mention.domain not in (None, self.domain):
                continue
            account = self.accounts.by_username(mention.username)
            if account is None:
                continue
            found.append(
                {
                    "id": str(account.id),
                    "username": account.username,
                    "url": f"{base_url}/@{account.username}",
                    "acct": account.username,
                }
            )
        return found

    # Notification

    def notification_list(
        self, records: list[NotificationRecord], base_url: str, viewer_id: int | None
    ) -> list[Json]:
        """Mastodon 4.3's v1 Notification: `group_key` is `ungrouped-ID` for a mention
        that no grouping applies to; `status` is the mentioning status, rendered for the
        account notified (it may see a private or direct status that mentions it)."""
        status_ids = [record.status_id for record in records if record.status_id is not None]
        found = [status for sid in status_ids if (status := self.statuses.get(sid)) is not None]
        rendered = dict(
            zip(
                (status.id for status in found),
                self.status_list(found, base_url, viewer_id),
                strict=True,
            )
        )
        senders: dict[int, Json] = {}
        notifications = []
        for record in records:
            if record.from_account_id not in senders:
                sender = self.accounts.by_id(record.from_account_id)
                assert sender is not None
                senders[record.from_account_id] = self.account(sender, base_url)
            entity: Json = {
                "id": str(record.id),
                "type": record.type,
                "created_at": iso_ms(record.created_at_ms),
                "group_key": f"ungrouped-{record.id}",
                "account": senders[record.from_account_id],
            }
            if record.status_id is not None:
                entity["status"] = rendered.get(record.status_id)
            notifications.append(entity)
        return notifications

    # MediaAttachment

    def media(self, record: MediaRecord, base_url: str, *, processed: bool = True) -> Json:
        """The attachment; one still processing has no `url` or `preview_url` yet."""
        path = f"{base_url}/system/media_attachments/files/{record.id}"
        return {
            "id": str(record.id),
            "type": "image",
            "url": f"{path}/original.{record.ext}" if processed else None,
            "preview_url": f"{path}/small.{record.ext}" if processed else None,
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": meta(record.width, record.height),
            "description": record.description,
            "blurhash": PLACEHOLDER_BLURHASH,
        }

    # Instance

    def _configuration(self) -> Json:
        return {
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": {
                "max_characters": self.max_characters,
                "max_media_attachments": MAX_MEDIA_ATTACHMENTS,
                "characters_reserved_per_url": 23,
            },
            "media_attachments": {
                "supported_mime_types": list(SUPPORTED_MIME_TYPES),
                "description_limit": DESCRIPTION_LIMIT,
                "image_size_limit": IMAGE_SIZE_LIMIT,
                "image_matrix_limit": IMAGE_MATRIX_LIMIT,
                "video_size_limit": 0,
                "video_frame_rate_limit": 0,
                "video_matrix_limit": 0,
            },
            "polls": {
                "max_options": 4,
                "max_characters_per_option": 50,
                "min_expiration": 300,
                "max_expiration": 2629746,
            },
        }

    def instance_v2(self, base_url: str) -> Json:
        users = len(self.accounts.all())
        configuration = self._configuration()
        configuration["urls"] = {"streaming": None, "status": None}
        configuration["vapid"] = {"public_key": ""}
        configuration["translation"] = {"enabled": False}
        return {
            "domain": self.domain,
            "title": "Sandbox",
            "version": MASTODON_VERSION,
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "A local stand-in for a Mastodon instance (social_pipelines sandbox).",
            "usage": {"users": {"active_month": users}},
            "thumbnail": {"url": base_url + MISSING_HEADER, "blurhash": None, "versions": {}},
            "icon": [],
            "languages": ["en"],
            "configuration": configuration,
            "registrations": {
                "enabled": False,
                "approval_required": False,
                "message": None,
                "url": None,
            },
            "api_versions": {"mastodon": MASTODON_API_VERSION},
            "contact": {"email": "", "account": None},
            "rules": [],
        }

    def instance_v1(self, base_url: str) -> Json:
        users = len(self.accounts.all())
        statuses = self.statuses.db.one("SELECT COUNT(*) AS n FROM statuses")
        return {
            "uri": self.domain,
            "domain": self.domain,
            "title": "Sandbox",
            "short_description": "A local stand-in for a Mastodon instance.",
            "description": "A local stand-in for a Mastodon instance (social_pipelines sandbox).",
            "email": "",
            "version": MASTODON_VERSION,
            "urls": {"streaming_api": None},
            "stats": {
                "user_count": users,
                "status_count": 0 if statuses is None else int(statuses["n"]),
                "domain_count": 1,
            },
            "thumbnail": base_url + MISSING_HEADER,
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": self._configuration(),
            "contact_account": None,
            "rules": [],
        }


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)
