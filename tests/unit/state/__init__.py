"""Unit tests of pipelines/state/."""
