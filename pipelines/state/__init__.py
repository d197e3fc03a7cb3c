"""The sync's own tables and what they say: runs and their verdicts, commits, leases, dead
letters, and what a dead run left.
"""
