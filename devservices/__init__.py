"""Local stand-ins for the outside services (PostgreSQL, Redis, Stripe, Twilio) used by `make run` and the tests.

Nothing in this package is imported by the product itself.
"""
