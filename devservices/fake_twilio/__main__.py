"""`python -m devservices.fake_twilio --port N [--demo]`."""

from __future__ import annotations

import argparse

from aiohttp import web

from devservices.fake_twilio.control import make_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args(argv)
    web.run_app(make_app(demo=args.demo), host="127.0.0.1", port=args.port, access_log=None,
                print=lambda msg: print(msg, flush=True))


if __name__ == "__main__":
    main()

