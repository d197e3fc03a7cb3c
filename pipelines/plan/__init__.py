"""What a run will do, decided before and while it reads: windows, reads, days,
quotas, the snapshot horizon. Beam-free, and pure code apart from the snapshot
horizon's lookups (``snapshot.guard``).
"""
