"""``manage.py mcp --user NAME``: the MCP server over stdio, acting for one user."""

import anyio
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from events.background import start_background_worker
from tasks.mcp.server import acting_as, mcp_server


class Command(BaseCommand):
    help = (
        "Serve Tideline's MCP tools over stdin/stdout for one user (a desktop assistant "
        "starts this). Like the web server, it runs the embedded background worker, so a "
        "completed repeating task gets its next instance."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="The username to act for.")

    def handle(self, *args, user: str, **options) -> None:
        account = get_user_model().objects.filter(username=user).first()
        if account is None or not account.is_active:
            raise CommandError(f"No active user named {user!r}.")
        connections.close_all()  # the tools use their own thread's connection
        start_background_worker()
        with acting_as(account.pk):
            anyio.run(mcp_server.run_stdio_async)
