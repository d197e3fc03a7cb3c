"""Unit tests of pipelines/cli/."""
