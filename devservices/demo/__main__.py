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
    from devservices.demo.agencies import demo_seed

    print(f"Demo logins (password: {args.password}):", flush=True)
    for where, email, role in demo_seed(password=args.password):
        url = f"http://{where.replace('<host>', args.host)}/" if "<host>" in where else f"http://{args.host}/admin/"
        print(f"  {url:<34} {email:<28} {role}", flush=True)


if __name__ == "__main__":
    main()
