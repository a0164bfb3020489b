from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from phone.demo import demo_spare_twilio_account

from agencies.demo import DEMO_AGENCIES, demo_seed


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
        if settings.TWILIO_API_BASE.startswith(("http://127.0.0.1:", "http://localhost:")):
            self.stdout.write("Twilio credentials the local fake Twilio accepts, free for a sub-account's "
                              "\"Use the agency's own Twilio account\" (any other credentials are refused):")
            for demo in DEMO_AGENCIES:
                sid, token = demo_spare_twilio_account(demo.slug)
                self.stdout.write(f"  {demo.slug:<10} Account SID {sid}  auth token {token}")
