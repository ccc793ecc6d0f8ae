"""The refusals and failures of forwarding."""

from __future__ import annotations

from openxp.errors import OpenXPError


class ForwardingError(OpenXPError):
    code = "forwarding_error"


class DestinationRefused(ForwardingError):
    """A target URL openxp will not call: not http(s), credentials in it, or an address that
    is not public (loopback, private, link-local...) and not in OPENXP_FORWARDING_ALLOW_NETWORKS."""

    code = "destination_refused"


class SealingError(ForwardingError):
    """A sealed value that the configured key cannot open (another OPENXP_FORWARDING_KEY)."""

    status = 500
    code = "sealing_error"


class DeliveryFailed(ForwardingError):
    """A delivery that did not succeed: the rows are retried later."""

    status = 502
    code = "delivery_failed"
