"""Tideline as a Model Context Protocol server (docs/mcp.md).

``operations`` does each tool's work in plain Django, through the API's serializers, the
services and the selectors; ``server`` declares the tools and resources for the ``mcp`` SDK;
``http`` serves them at ``/mcp/`` to a user's API token (``todo_project.asgi``), and the
``mcp`` management command over stdio for one named user.
"""
