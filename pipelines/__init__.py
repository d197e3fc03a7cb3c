"""Nightly Firestore → BigQuery sync, built on Apache Beam."""
