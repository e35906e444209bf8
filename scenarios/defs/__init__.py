"""Scenario definitions (TOML), read by :mod:`scenarios.library`; a package so they ship with it."""
