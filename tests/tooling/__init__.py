"""Tests of the project's tooling: deploy scripts, packaging, docs, benchmark."""
