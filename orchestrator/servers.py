"""What the web servers need from orchestratord's process, set up before they serve (no Django here).

`bench/floor_app.py` applies the same to its apps, so that its floor runs on
the server as orchestratord runs on it.
"""

from __future__ import annotations

import sys
from typing import Any


def leave_bodies_to_the_app() -> None:
    """Twisted parses no request body before daphne hands it over: Django does, as under any server.

    Twisted's `Request` reads a POST's form body (urlencoded or multipart) into its `args`,
    which daphne never reads: it sends the raw body to the application. That parse took 4% of
    daphne's CPU under an admission load (the Content-Type alone goes through the `email`
    package), and a multipart body it cannot parse was answered by Twisted itself, a bare 400
    with no body, no error envelope, and the connection closed. Daphne's protocol looks up
    its request class when it builds each connection's protocol; this class, its own with
    the parse turned off (Twisted's switch since 25.5, pinned), replaces it before the
    server starts listening.
    """
    http_protocol: Any = sys.modules.get("daphne.http_protocol")
    if http_protocol is None:
        return
    daphne_request: type[Any] = http_protocol.WebRequest
    if getattr(daphne_request, "leaves_bodies_to_the_app", False):
        return  # already in place

    class WebRequest(daphne_request):  # type: ignore[misc]
        leaves_bodies_to_the_app = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "parsePOSTFormSubmission": False})

    http_protocol.WebRequest = WebRequest
