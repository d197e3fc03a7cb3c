"""Unit tests of pipelines/plan/."""
