"""The state store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The ledger is the single source of truth for what was sent: quotas are counted from it and
re-runs consult it, so there is no second bookkeeping that can drift from it.

This is the schema as the code reads and writes it today. The migrations under
`migrations/versions` build it (a test compares the two); a change here needs a revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite would hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the state store; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("account_key", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # What the delivery is for: the id of the post answered, or outbox post id and target.
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("campaign", sa.String(128), nullable=True),
    # The account's name in the campaigns file: what a later run connects with to send a
    # deferred delivery without searching again.
    sa.Column("account", sa.String(64), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("content_hash", sa.String(64), nullable=False, default=""),
    sa.Column("remote_id", sa.String(255), nullable=True),
    sa.Column("remote_url", sa.String(1024), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", UtcDateTime(), nullable=True),
    # A `sending` row belongs to its claimant until then; afterwards it counts as unknown.
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("error_kind", sa.String(32), nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    # What the delivery delivers (an outbox target, `post_id/target`), stored at plan time.
    sa.Column("reference", sa.String(200), nullable=True),
    # What an earlier attempt already made on the platform and a later one reuses instead of
    # making again: an uploaded media id, a record key, a container id.
    # Text: a Bluesky upload is its blob reference with alt text and aspect ratio (0006).
    sa.Column("staged_id", sa.Text, nullable=True),
    # Attempts made before the delivery was last made due again by hand (`retry`): the
    # attempt limit counts only those after it, the attempt numbers go on.
    sa.Column("attempt_base", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.UniqueConstraint("platform", "account_key", "kind", "subject", name="uq_delivery_subject"),
)
sa.Index(
    "ix_deliveries_sent", deliveries.c.platform, deliveries.c.account_key, deliveries.c.sent_at
)
sa.Index("ix_deliveries_state", deliveries.c.state, deliveries.c.not_before)
# A post on the platform is one delivery's: two deliveries can never both be recorded with it
# (two reconciliations of two publishes of one text, racing in two processes).
sa.Index(
    "uq_deliveries_remote",
    deliveries.c.platform,
    deliveries.c.account_key,
    deliveries.c.remote_id,
    unique=True,
)
# Quota checks count an account's sends in flight and unknown outcomes on every claim.
sa.Index(
    "ix_deliveries_account_state",
    deliveries.c.platform,
    deliveries.c.account_key,
    deliveries.c.state,
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.String(64),
        sa.ForeignKey("deliveries.delivery_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    # sent, reconciled, failed, unknown, dead, deferred; "superseded:..." when a newer
    # attempt took the delivery over before this one reported.
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error_kind", sa.String(32), nullable=True),
    sa.Column("error", sa.String(2048), nullable=True),
)

circuit_breakers = sa.Table(
    "circuit_breakers",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("fail_counter", sa.Integer, nullable=False, default=0),
    sa.Column("success_counter", sa.Integer, nullable=False, default=0),
    sa.Column("opened_at", UtcDateTime(), nullable=True),
    # The one process allowed to make the half-open trial call, and until when.
    sa.Column("trial_owner", sa.String(64), nullable=True),
    sa.Column("trial_until", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

breaker_events = sa.Table(
    "breaker_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, index=True),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("reason", sa.String(2048), nullable=True),
)

rate_blocks = sa.Table(
    "rate_blocks",
    metadata,
    # platform:account:bucket; every process consults it before taking a slot.
    sa.Column("bucket", sa.String(255), primary_key=True),
    sa.Column("blocked_until", UtcDateTime(), nullable=False),
    sa.Column("reason", sa.String(255), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# What each platform announced about a bucket (X-RateLimit-*, RateLimit-*, ...): every
# request of every process takes one from `remaining` before it is sent. No row, or a reset
# in the past, means nothing is known for the current window.
rate_budgets = sa.Table(
    "rate_budgets",
    metadata,
    sa.Column("bucket", sa.String(255), primary_key=True),
    sa.Column("announced_limit", sa.Integer, nullable=True),
    sa.Column("remaining", sa.Integer, nullable=False),
    sa.Column("reset_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Requests sent and not yet answered, per bucket (one row per request and bucket). They
# expire on their own, so a killed process never holds a bucket for longer than that.
rate_permits = sa.Table(
    "rate_permits",
    metadata,
    sa.Column("permit", sa.String(32), primary_key=True),
    sa.Column("bucket", sa.String(255), primary_key=True),
    sa.Column("taken_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_rate_permits_bucket", rate_permits.c.bucket, rate_permits.c.expires_at)

# The outbox: posts to publish, as their authors wrote them. One row per post holds the
# revision in effect; `post_revisions` keeps every revision. Each target of a post is a
# `publish` delivery in the ledger (subject `post_id/target`), so what went out, and how,
# is recorded where replies are, and a post's state is derived from those rows.
posts = sa.Table(
    "posts",
    metadata,
    sa.Column("post_id", sa.String(100), primary_key=True),
    # The revision in effect: what is (or was) published.
    sa.Column("revision", sa.Integer, nullable=False),
    # The newest revision, and its content hash: an edit made after the post went out is
    # recorded (and reported) without taking effect.
    sa.Column("latest_revision", sa.Integer, nullable=False),
    sa.Column("latest_hash", sa.String(64), nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # the revision in effect, a Post as JSON
    sa.Column("at", UtcDateTime(), nullable=False),
    # open (waiting or publishing), done (every target settled), missed, cancelled.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.Text, nullable=True),
    # Where the post came from: `cli`, or `calendar` with the file in `source`.
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False, default=""),
    # Targets refused when the post was scheduled or synced (JSON: target -> reason).
    sa.Column("refused", sa.Text, nullable=False, default="{}"),
    # When the due-posts sensor looks at the post next: its time at first, pushed on while
    # a run works on it (so a failed run's posts come back), then to a deferral's end.
    sa.Column("next_check_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_posts_due", posts.c.status, posts.c.next_check_at)
sa.Index("ix_posts_origin", posts.c.origin, posts.c.status)

post_revisions = sa.Table(
    "post_revisions",
    metadata,
    sa.Column(
        "post_id",
        sa.String(100),
        sa.ForeignKey("posts.post_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False, default=""),
    # Why a revision did not take effect ("changed after publishing"), when it did not.
    sa.Column("note", sa.String(1024), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# A post's deliveries are found by subject (`post_id/target`) without knowing each target's
# account key.
sa.Index("ix_deliveries_kind_subject", deliveries.c.kind, deliveries.c.subject)

# One row per account holding tokens that expire (a Bluesky session, X OAuth tokens): what
# every process and machine uses, refreshed by one of them at a time (`refresh_owner` until
# `refresh_until`, claimed by a conditional update like the breaker's trial). `payload` is
# the token set as JSON, Fernet-encrypted with SOCIAL_SECRET_KEY when one is set.
# Every account whose platform refused it for good is marked here too (`state`
# reconnect_needed, with the platform's words), Mastodon's included, until it is accepted
# again.
account_tokens = sa.Table(
    "account_tokens",
    metadata,
    sa.Column("platform", sa.String(32), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("encrypted", sa.Boolean, nullable=False, default=False),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("refresh_expires_at", UtcDateTime(), nullable=True),
    # ok, or reconnect_needed (a recognised auth failure), with the reason and since when.
    sa.Column("state", sa.String(24), nullable=False, default="ok"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("marked_at", UtcDateTime(), nullable=True),
    # Bumped by every write of the tokens: a refresh that read version n writes only if it
    # is still n (and it holds the refresh claim).
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("refresh_owner", sa.String(64), nullable=True),
    sa.Column("refresh_until", UtcDateTime(), nullable=True),
    sa.Column("refreshed_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# A reply written for a delivery, once: a retried or re-executed run reuses it instead of
# asking the writer (a language model) again. A refused draft is kept with its reason.
reply_drafts = sa.Table(
    "reply_drafts",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("campaign", sa.String(128), nullable=False),
    sa.Column("writer", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    # accepted: `text` is what `writer` wrote (`reason`, if any, says why the template
    # stood in for a language model that was not configured, had its circuit open or
    # failed); refused: the model's draft was refused by a filter (`reason` names it and
    # quotes the draft) and `text` is the template's.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# Operators' alerts, one row per event (a failed run, a circuit that opened, an account to
# reconnect, ...): keyed by the event's identity, so a retried step, a second tick or a
# second sensor process finds the row there and records nothing twice. `payload` is the
# alert as its sinks get it (`alerts/model.py`, JSON schema social_pipelines.alert/1).
# Rows are never deleted: an alert no sink took stays visible (`alert_deliveries`).
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_key", sa.String(512), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_alerts_created", alerts.c.created_at)

# Each alert's delivery to each sink it was recorded for (webhook, slack, or log when none
# is configured): pending -> sending (claimed by one sensor process until `claim_until`)
# -> sent, or failed (tried; tried again from `next_attempt_at`, with backoff). The sends of
# the last minute are what the per-sink rate limit counts: no second bookkeeping.
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column(
        "alert_key",
        sa.String(512),
        sa.ForeignKey("alerts.alert_key", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("sink", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("claim_owner", sa.String(64), nullable=True),
    sa.Column("claim_until", UtcDateTime(), nullable=True),
    # The last failure's class (errors.py: Transient, RateLimited, Rejected) and message,
    # which names the sink's host only, never its URL.
    sa.Column("last_error_class", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index(
    "ix_alert_deliveries_due",
    alert_deliveries.c.sink,
    alert_deliveries.c.state,
    alert_deliveries.c.next_attempt_at,
)
sa.Index("ix_alert_deliveries_sent", alert_deliveries.c.sink, alert_deliveries.c.sent_at)
# The alerts sensor reads the circuits opened since its last look.
sa.Index("ix_breaker_events_at", breaker_events.c.at)

# What each step of a run handed the next (Dagster's step outputs, pickled by the IO manager
# of `io_manager.py`): kept here rather than in files under one machine's $DAGSTER_HOME, so
# a run re-executed (by hand or by a run retry) on any machine that reaches the store
# reads the outputs of the steps that succeeded instead of doing them again. A step retried
# within its run writes its output again over the first.
step_outputs = sa.Table(
    "step_outputs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("step_key", sa.String(255), primary_key=True),
    sa.Column("output_name", sa.String(255), primary_key=True),
    # The mapping key of one dynamic output (a campaign, an account); "" for a plain output.
    sa.Column("mapping_key", sa.String(255), primary_key=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_step_outputs_created", step_outputs.c.created_at)
