"""Python helpers for Roam's process-level tests: real servers on free loopback ports."""
