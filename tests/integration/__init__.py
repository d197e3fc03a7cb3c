"""Tests against the local Firestore and BigQuery emulators."""
