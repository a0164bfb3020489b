"""The launcher's layer does what Stripe does when a card is saved (our webhook handlers rely on it)."""

import http.server
import queue
import threading

import pytest
import stripe

from devservices.localstripe_server import register_webhook, unregister_webhook
from tests.billing.fixtures import ACCT_A, WEBHOOK_SECRET, on
from tests.billing.helpers import confirm_like_stripe_js


@pytest.fixture
def deliveries(localstripe):
    received: queue.Queue = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(stripe.Webhook.construct_event(body, self.headers["Stripe-Signature"], WEBHOOK_SECRET))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook_id = register_webhook(localstripe, url=f"http://127.0.0.1:{server.server_address[1]}/",
                                  secret=WEBHOOK_SECRET)
    yield received
    unregister_webhook(localstripe, webhook_id)
    server.shutdown()
    server.server_close()


def _events(received, wanted, timeout=10.0):
    events = {}
    while not wanted <= events.keys():
        event = received.get(timeout=timeout)
        events[(event.type, event.data.object.id)] = event
    return events


def test_a_confirmed_setup_intent_attaches_its_card_and_sends_events(localstripe, raw_stripe, deliveries):
    cus = raw_stripe.v1.customers.create(options=on(ACCT_A))
    seti = raw_stripe.v1.setup_intents.create(params={"customer": cus.id, "usage": "off_session"},
                                              options=on(ACCT_A))

    confirmed = confirm_like_stripe_js(localstripe, seti.id, seti.client_secret)

    pm_id = confirmed["payment_method"]
    assert raw_stripe.v1.payment_methods.retrieve(pm_id, options=on(ACCT_A)).customer == cus.id
    events = _events(deliveries, {("setup_intent.succeeded", seti.id), ("payment_method.attached", pm_id)})
    assert events[("setup_intent.succeeded", seti.id)].account == ACCT_A
    assert events[("payment_method.attached", pm_id)].account == ACCT_A

    raw_stripe.v1.payment_methods.detach(pm_id, options=on(ACCT_A))
    detached = _events(deliveries, {("payment_method.detached", pm_id)})
    assert detached[("payment_method.detached", pm_id)].data.object.customer is None
