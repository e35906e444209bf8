"""Scenario library, regression runner and sweeps."""
