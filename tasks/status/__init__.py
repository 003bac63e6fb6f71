"""Status: one bounded, read-only report of the running cluster against what the stack declares."""

# what `cluster.status --format` takes (here, so the task's flags need no import of the report)
FORMATS = ("table", "json")
