"""Unit tests of pipelines/services/."""
