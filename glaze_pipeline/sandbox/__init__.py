"""Loopback stand-ins for the outside world: demo websites and provider simulators."""
