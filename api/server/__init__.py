"""The control-centre service (FastAPI): settings, database, auth, live engine, routes.

``create_app(settings)`` is the front door; ``greenwave serve`` runs it under uvicorn.
"""

from api.server.app import create_app
from api.server.settings import Settings, load_settings

__all__ = ["create_app", "Settings", "load_settings"]
