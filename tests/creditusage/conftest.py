from tests.billing.conftest import connected  # noqa: F401
from tests.billing.fixtures import localstripe, localstripe_base, raw_stripe  # noqa: F401
from tests.phone.conftest import fake_twilio, fake_twilio_process, twilio  # noqa: F401
