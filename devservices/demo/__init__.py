"""The demo `make run` starts with (agencies, clients, people, phone providers against the fakes).

Lives with the stand-ins it needs (localstripe, the fake Twilio): no product package imports it, and the
production image does not ship it. Run as ``python -m devservices.demo --password P [--host H]``.
"""
