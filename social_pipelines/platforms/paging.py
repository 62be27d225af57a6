"""One accounting for reading a reply source page by page, whatever the platform.

Every adapter's `search` pages back through its source and stops at the first of: the
campaign's limit, the source's end (or `since`), or a page cap. What stopped it is said in
the `SearchResult` (never dropped in silence), and the account's own posts are counted,
never taken for room. Adapters supply the pages (`(posts, more)` pairs: the posts of one
page, and whether another may follow); the page is asked for only while room is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from social_pipelines.models import SearchResult, SocialPost

Pages = Iterable[tuple[list[SocialPost], bool]]


def collect(
    pages: Pages,
    *,
    limit: int,
    own_id: str,
    max_pages: int,
    keep: Callable[[SocialPost], bool] = lambda post: True,
) -> SearchResult:
    """Other accounts' posts that `keep` wants, at most `limit`. When the last page's
    matches overflow the limit (or fill it with more to come), the result says how many
    were left and whether the platform had more; at `max_pages` it says so too."""
    posts: list[SocialPost] = []
    own = count = 0
    for page, more in pages:
        count += 1
        matching = [post for post in page if keep(post)]
        others = [post for post in matching if post.author_id != own_id]
        own += len(matching) - len(others)
        room = limit - len(posts)
        posts.extend(others[:room])
        if len(others) > room or (len(others) == room and more):
            return SearchResult(
                posts=posts,
                pages=count,
                own_skipped=own,
                complete=False,
                stopped_by=f"search_limit={limit}",
                not_examined=len(others) - room,
                more_beyond=more,
            )
        if not more:
            break
        if count >= max_pages:
            return SearchResult(
                posts=posts,
                pages=count,
                own_skipped=own,
                complete=False,
                stopped_by=f"{max_pages} pages",
                more_beyond=True,
            )
    return SearchResult(posts=posts, pages=count, own_skipped=own)
