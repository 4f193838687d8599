"""The local tagging UI (Starlette + jinja2): see `genmed.erroranalysis.web.app`."""

from genmed.erroranalysis.web.app import Review, check_host, create_app, serve

__all__ = ["Review", "check_host", "create_app", "serve"]
