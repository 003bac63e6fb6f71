"""Status: one bounded, read-only report of the running cluster against what the stack declares."""
