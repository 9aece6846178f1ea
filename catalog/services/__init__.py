"""The catalog's business operations. Views, admin actions and jobs call these, nothing else.

- entries: create_model, replace_model, put_model, delete_model, set_model_state
- verification: request_verification, run_verification
- trust: check_trust (pure; the data plane's admission calls it)
- availability: availability (what online pools serve)
"""

from catalog.services.availability import availability
from catalog.services.entries import create_model, delete_model, put_model, replace_model, set_model_state
from catalog.services.trust import TrustDecision, check_trust
from catalog.services.verification import request_verification, run_verification

__all__ = [
    "TrustDecision",
    "availability",
    "check_trust",
    "create_model",
    "delete_model",
    "put_model",
    "replace_model",
    "request_verification",
    "run_verification",
    "set_model_state",
]
