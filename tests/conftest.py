"""Suite-wide settings: property tests judge values, never time (machines here are noisy)."""

from hypothesis import HealthCheck, settings

settings.register_profile("kvmpmu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kvmpmu")
