"""Create the demo agencies, sub-accounts and people (idempotent) and print their logins."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--password", required=True, help="Password given to every demo login")
    parser.add_argument("--host", default="localhost:8000", help="How the web server is reached")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebill.settings")
    import django

    django.setup()
    from django.conf import settings

    from devservices.demo.agencies import DEMO_AGENCIES, demo_seed
    from devservices.demo.phone import demo_spare_twilio_account

    print(f"Demo logins (password: {args.password}):", flush=True)
    for where, email, role in demo_seed(password=args.password):
        url = f"http://{where.replace('<host>', args.host)}/" if "<host>" in where else f"http://{args.host}/admin/"
        print(f"  {url:<34} {email:<28} {role}", flush=True)
    if settings.TWILIO_API_BASE.startswith(("http://127.0.0.1:", "http://localhost:")):
        print("Twilio credentials the local fake Twilio accepts, free for a sub-account's "
              "\"Use the agency's own Twilio account\" (any other credentials are refused):", flush=True)
        for demo in DEMO_AGENCIES:
            sid, token = demo_spare_twilio_account(demo.slug)
            print(f"  {demo.slug:<10} Account SID {sid}  auth token {token}", flush=True)


if __name__ == "__main__":
    main()
