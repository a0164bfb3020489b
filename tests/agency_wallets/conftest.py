from tests.billing.conftest import connected  # noqa: F401
from tests.billing.fixtures import localstripe, localstripe_base, raw_stripe  # noqa: F401
