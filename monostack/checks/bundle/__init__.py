"""The rules of ``bundle-validate``, one module per concept; :mod:`monostack.checks.bundle_validate`
runs them."""
