"""A localstripe (with our layer) shared by the devservices tests, reset before each test."""

from __future__ import annotations

import http.server
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import stripe

from devservices.localstripe_server import register_webhook, reset, unregister_webhook

SECRET_KEY = "sk_test_rebill_platform"


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    reset(localstripe_url)
    return localstripe_url


@pytest.fixture
def stripe_client(localstripe: str) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe, "connect": localstripe},
                               max_network_retries=0)


@dataclass
class WebhookReceiver:
    url: str
    secret: str
    deliveries: queue.Queue[tuple[bytes, str]] = field(default_factory=queue.Queue)

    def next(self, timeout: float = 10.0) -> tuple[bytes, str]:
        """(raw body, Stripe-Signature header) of the next delivery."""
        return self.deliveries.get(timeout=timeout)


@pytest.fixture
def webhook_receiver(localstripe: str) -> Iterator[WebhookReceiver]:
    """A local HTTP endpoint registered with localstripe for every event type."""
    deliveries: queue.Queue[tuple[bytes, str]] = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.put((body, self.headers.get("Stripe-Signature", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook",
                               secret="whsec_test_rebill", deliveries=deliveries)
    webhook_id = register_webhook(localstripe, url=receiver.url, secret=receiver.secret)
    try:
        yield receiver
    finally:
        unregister_webhook(localstripe, webhook_id)
        server.shutdown()
        server.server_close()
