"""Command-line interface, FastAPI service and dashboard."""
