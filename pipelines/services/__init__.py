"""The Firestore and BigQuery clients, reachability probes and error text. Beam-free: the
analytics import from here.
"""
