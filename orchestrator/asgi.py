"""ASGI entry point: `daphne orchestrator.asgi:application`.

Plain HTTP — REST, admin and the SSE stream — goes through Django's own ASGI
handler, which cancels a streaming response's generator as soon as the client
disconnects (the Channels AsyncHttpConsumer does not notice).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - Django must be set up first

application = ProtocolTypeRouter({"http": django_asgi_app})
