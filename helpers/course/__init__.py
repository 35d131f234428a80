"""Course plumbing on top of the library: profiles (ci | cpu | gpu), the artifacts folder, catch-ups that
rebuild what an earlier notebook made, run-time budgets, self-checking exercises, offline readiness and the
headless notebook runner. The only layer that knows about notebooks; it may import every other layer.
"""
