"""Shared test helpers: documents, fixtures' servers, the example app's schemas."""
