"""Test doubles of external services that the real client libraries talk to over HTTP."""
