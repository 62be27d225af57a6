"""Chaos suite: faults, SIGKILLed runs and racing processes against the sandbox platform.

`make test` runs the short version; `make chaos` (SOCIAL_CHAOS_LONG=1) the long one.
"""
