"""What the benchmarks share: a Django of their own over a fresh SQLite file, like production otherwise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(data_dir: str, **env: str) -> None:
    """Set up Django over `data_dir` (database, data and storages), DEBUG off as in production.

    The run starts with DEBUG=1 so the built-in SECRET_KEY is accepted, then turns DEBUG off:
    no query log is kept in memory. `env` adds settings from the environment.
    """
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("DEBUG", "1")
    os.environ["GENERATOR_DATA_DIR"] = data_dir
    os.environ["SQLITE_PATH"] = os.path.join(data_dir, "bench.sqlite3")
    os.environ["GENERATOR_LOCAL_STORAGE_ROOT"] = os.path.join(data_dir, "storages")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
