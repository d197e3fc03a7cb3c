"""What a run will do, decided before and while it reads: windows, reads, days, quotas, the
snapshot horizon. Pure code: no Beam, no client.
"""
