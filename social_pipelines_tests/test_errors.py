"""What an error says in a log line (a short summary) and what the ledger keeps (more)."""

from __future__ import annotations

import pytest

from social_pipelines.errors import (
    ERROR_EXCERPT_LIMIT,
    SUMMARY_LIMIT,
    OutcomeUnknown,
    Rejected,
    Transient,
    summarize,
)

NGINX_502 = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>502 Bad Gateway</title>
<style>body { font-family: sans-serif; }</style></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx/1.27.0</center>
<script>window.location.reload()</script>
</body>
</html>
"""


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        (NGINX_502, "502 Bad Gateway"),
        ("<html><head><title>\n  Just a moment...\n</title></head></html>", "Just a moment..."),
        ("<HTML><TITLE>A &amp; B</TITLE></HTML>", "A & B"),
        # No title: the first line of visible text, never a script or a style.
        (
            "<html><head><style>p{}</style></head><body><h1>Down for maintenance</h1>"
            "<p>Back soon</p><script>x()</script></body></html>",
            "Down for maintenance",
        ),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN">'
            "<html><title>XHTML error</title></html>",
            "XHTML error",
        ),
        (
            '{"error": "Validation failed: Text can\'t be blank"}',
            '{"error": "Validation failed: Text can\'t be blank"}',
        ),
        ("\n\n   upstream   timed out  \nline two\n", "upstream timed out"),
        # What the ledger stores: our lead, then the page.
        (
            "mastodon: server error (HTTP 502): " + NGINX_502,
            "mastodon: server error (HTTP 502): 502 Bad Gateway",
        ),
        ("line one\n<html><title>not the first line</title></html>", "line one"),
        ("", ""),
        ("   \n  ", ""),
        (None, ""),
    ],
)
def test_summarize(body: str | None, summary: str) -> None:
    assert summarize(body) == summary


def test_a_long_line_is_cut_to_the_summary_limit() -> None:
    summary = summarize("word " * 1000)
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("...")


def test_an_html_error_page_becomes_its_title_in_the_message() -> None:
    error = OutcomeUnknown(
        "server error on a create; it may have been processed",
        platform="mastodon",
        status_code=502,
        detail=NGINX_502,
    )
    assert str(error) == (
        "mastodon: server error on a create; it may have been processed (HTTP 502): 502 Bad Gateway"
    )
    assert error.summary == "502 Bad Gateway"
    # The ledger's text keeps the page itself (up to 2 KB).
    assert error.detail == NGINX_502
    assert error.full_text == (
        "mastodon: server error on a create; it may have been processed (HTTP 502): " + NGINX_502
    )


def test_the_full_text_is_an_excerpt_of_at_most_2_kb() -> None:
    page = "<html><title>Oops</title><body>" + "é" * 20_000 + "</body></html>"
    error = Transient("service unavailable", platform="m", status_code=503, detail=page)
    assert str(error) == "m: service unavailable (HTTP 503): Oops"
    assert len(error.full_text.encode("utf-8")) <= ERROR_EXCERPT_LIMIT
    assert error.full_text.startswith("m: service unavailable (HTTP 503): <html><title>Oops")
    assert error.full_text.endswith("...")


def test_an_error_without_detail_reads_the_same_both_ways() -> None:
    error = Rejected("access denied", platform="mastodon", status_code=403)
    assert str(error) == error.full_text == "mastodon: access denied (HTTP 403)"
