"""The hypothesis settings profile of the engine's property tests.

Example counts are kept modest so that the engine's tests finish in well under a minute and a half on
a loaded two-core machine; set ``TRADEWIRE_HYPOTHESIS=thorough`` for a longer hunt on a quiet one.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "engine",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.register_profile(
    "engine-thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ENGINE_SETTINGS = settings.get_profile(
    "engine-thorough" if os.environ.get("TRADEWIRE_HYPOTHESIS") == "thorough" else "engine"
)
"""Decorate each property test with this (it does not change the profile of other tests)."""
