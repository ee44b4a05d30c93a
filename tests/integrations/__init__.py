"""Tests of the framework adapters under integrations/, against the real frameworks."""
