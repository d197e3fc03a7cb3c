"""Unit tests of f2bq_analytics/."""
