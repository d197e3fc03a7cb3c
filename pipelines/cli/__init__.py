"""The commands: arguments and options, the end-of-run report, status, schema, backfill."""
