"""Test configuration: a deterministic hypothesis profile for CI and everyday runs.

``ci`` (the default) is derandomized and has no deadline, because Numba compiles a kernel
the first time it is called. Set HYPOTHESIS_PROFILE=dev for randomized, longer runs.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow],
                          print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
