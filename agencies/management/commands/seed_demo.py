from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agencies.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo agencies, sub-accounts and people (idempotent) and print their logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", required=True, help="Password given to every demo login")
        parser.add_argument("--host", default="localhost:8000", help="How the web server is reached")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"]
        self.stdout.write(f"Demo logins (password: {options['password']}):")
        for where, email, role in demo_seed(password=options["password"]):
            url = f"http://{where.replace('<host>', host)}/" if "<host>" in where else f"http://{host}/admin/"
            self.stdout.write(f"  {url:<34} {email:<28} {role}")
