"""HTTP API of this app: serializers, views, urls."""
