"""Artifacts tests never write to the real file store: the storage points at tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def artifacts_dir(tmp_path: Path, settings: Any) -> Path:
    directory = tmp_path / "artifacts"
    settings.ORCHD_ARTIFACTS_DIR = directory
    # Overriding STORAGES resets Django's cached backends, so the service's
    # next storages["artifacts"] lookup builds a storage at this location.
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(directory)},
        },
    }
    return directory
