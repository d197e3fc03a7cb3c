"""Beam transforms of the sync: read, plan, convert, write."""
