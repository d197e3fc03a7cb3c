"""Unit tests of pipelines/transforms/."""
