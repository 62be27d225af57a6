"""A post's images as each platform gets them: fetched, rendered to the platform's spec and
cached, so a retry or a second run renders nothing again.

The plan step renders every image for all the platforms its targets are on at once (the
source decoded once); the posting steps then find their renderings in the cache. A bad image
is refused naming the post and the image: permanent for a file that is not an image, worth
another try later for a fetch that failed on the way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from social_pipelines.errors import MediaError, Rejected, Transient
from social_pipelines.media import (
    ImageSource,
    MediaSpec,
    RenderCache,
    load_source,
    render_for_targets,
    spec_for,
)
from social_pipelines.models import MediaUpload, Post, PostImage


class PostImages:
    """Renders posts' images through one cache directory."""

    def __init__(self, cache_dir: Path, *, fetch_timeout: float = 20.0) -> None:
        self.cache = RenderCache(cache_dir)
        self.fetched = cache_dir / "fetched"
        self.fetch_timeout = fetch_timeout

    def source(self, post: Post, image: PostImage) -> ImageSource:
        """The image's bytes: a local file read, a URL fetched once per post (the plan's
        rendering, each platform's upload and a retry all use the bytes first fetched)."""
        if not image.source.startswith("https://"):
            return load_source(image.source, post_id=post.id, timeout=self.fetch_timeout)
        key = hashlib.sha256(f"{post.id}\x1f{image.source}".encode()).hexdigest()
        path = self.fetched / key
        if path.is_file():
            return ImageSource(data=path.read_bytes(), location=image.source, post_id=post.id)
        source = load_source(image.source, post_id=post.id, timeout=self.fetch_timeout)
        self.fetched.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{key}.{os.getpid()}.part")
        partial.write_bytes(source.data)
        os.replace(partial, path)
        return source

    def prerender(self, post: Post, platforms: Iterable[str]) -> list[str]:
        """Render every image of the post for every platform named, each source decoded
        once; returns the problems (the posting steps will refuse those targets)."""
        specs = [spec_for(platform) for platform in sorted(set(platforms))]
        problems: list[str] = []
        for image in post.images:
            try:
                render_for_targets(self.source(post, image), specs, cache=self.cache)
            except MediaError as error:
                problems.append(str(error))
        return problems

    def uploads(self, post: Post, platform: str) -> list[MediaUpload]:
        """Each image rendered for the platform, with its alt text; a bad one raises the
        error the ledger records (Rejected: dead with the reason, Transient: tried again)."""
        spec = spec_for(platform)
        return [self._upload(post, index, image, spec) for index, image in enumerate(post.images)]

    def _upload(self, post: Post, index: int, image: PostImage, spec: MediaSpec) -> MediaUpload:
        try:
            source = self.source(post, image)
            (rendering,) = render_for_targets(source, [spec], cache=self.cache)
        except MediaError as error:
            if error.transient:
                raise Transient(str(error)) from error
            raise Rejected(str(error)) from error
        return rendering.upload(image.alt, f"{post.id}-{index + 1}.{rendering.extension}")
