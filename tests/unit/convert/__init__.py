"""Unit tests of pipelines/convert/."""
