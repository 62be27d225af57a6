"""Stateful stand-ins of the platforms the sandbox does not speak (Bluesky, X), for respx.

Each fake is a callable `(httpx.Request) -> httpx.Response` that keeps state the way the
real service does (accounts, sessions and tokens, posts, uploads, rate counters), on the
request and response shapes of `/work/shared/reference/platforms.md` (each handler's
docstring names its section). Use it with respx:

    fake = BlueskyFake()
    with respx.mock(assert_all_called=False) as mock:
        for host in fake.hosts:
            mock.route(host=host).mock(side_effect=fake)
        mock.route(host="127.0.0.1").pass_through()  # the sandbox
        ...

They are deliberately strict: an unknown parameter, a missing field, a wrong token is
refused as the platform refuses it, so an adapter that works against them has at least
spoken the documented protocol. Faults (a lost answer after a create, a lagging timeline)
are switched on per test.
"""
