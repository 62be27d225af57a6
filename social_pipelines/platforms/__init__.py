"""Platform adapters. Adding a platform touches its module and one line in `catalog.py`.

An adapter module (`platforms/<name>.py`, `mastodon.py` is the model) MUST export:

- `NAME`, and an account model on `account.AccountBase` with `platform: Literal[NAME]`
  and exactly the platform's fields; credentials as `*_env` fields naming variables,
  read with `AccountBase.secret`, never stored;
- `POLICY`, its `policy.PlatformPolicy` row: breaker, rate buckets per endpoint class
  (from `../shared/reference/platforms.md`, with sources), posting quotas, retries;
- `connect(account, *, variables, door, timeout, transport=None)` returning the adapter;
- `SPEC = PlatformSpec(...)` naming all of the above and its `Capability` set; the class
  implements `capabilities.Adapter` (`ClosedOnExit` makes it a context manager) and
  exactly the protocols of what it declares
  (`Searcher`, `Poster`, `MediaUploader`, `Reconciler`: `find_delivery` finds its own
  posts its own way: reply target, record key, content hash, container id).

The adapter MUST:

- build its client with `http.build_client(..., door=door)` and send every request with
  `extensions=http.route(endpoint_class, create=...)`: the door takes the rate permit,
  feeds the rate headers back and classifies transport failures (a request without an
  endpoint class is refused);
- map every answer into `errors.py` (`AuthExpired`, `RateLimited` with its wait,
  `Duplicate`, `Rejected`, ...), falling back to `http.status_error`; a failure after a
  create may have left is `OutcomeUnknown`, never `Transient`;
- send the platform's dedupe handle on creates (the delivery id, or a key derived from it);
- keep secrets out of messages, details and reprs;
- count text as the platform does (`text_length` is pure: no request).

The adapter MAY NOT: retry, sleep, rate-limit, count quotas, open a breaker, log, touch
the store, or import anything above `platforms/` (the resilience layer and the ledger do
all of that around it, once, for every platform). The one wait allowed is a step of the
platform's own protocol, bounded and with every request through the door: polling an
upload until the platform has processed it (Mastodon's 202 media). Only `resilience/`
imports `registry`.

`social_pipelines_tests/platforms/test_conformance.py` runs every registered adapter
through the same checks; a new adapter passes it before anything else.
"""
