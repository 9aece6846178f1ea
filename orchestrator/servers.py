"""How orchestratord's web process is set up around the server and Django, before it serves.

Importable without Django's settings (Django is imported inside the
functions), so that `bench/floor_app.py` applies the same to its apps: its
floor runs on the server, and through Django, as orchestratord does.
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


def check_connections_after_requests() -> None:
    """On the one DB thread, look at the connection after each request, not before.

    Django's request_started receivers (`close_old_connections`,
    `reset_queries`) are sync: each request would make one more trip to the
    DB thread before its view, queued behind a burst of admissions. After the
    response, Django makes that trip anyway (to close the response; for
    admissions, in their own trip), and `close_old_connections` runs then too.
    """
    from django.core import signals
    from django.db import close_old_connections, reset_queries

    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)
    signals.request_finished.connect(reset_queries)
