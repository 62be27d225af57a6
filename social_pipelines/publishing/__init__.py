"""Publishing scheduled posts: the outbox's two ways in (the CLI and the calendar), what
state a post is in, and what a publish delivery creates (its images rendered and uploaded).

- `intake`: `schedule` (the CLI) and `sync_calendar`, both checking each target's content
  rules;
- `states`: a post's and each target's state, from the outbox and the ledger;
- `prepare`: the deliverer's `prepare` for publishes (re-read, lateness, images);
- `steps`: the values the publish job's steps pass on.
"""
