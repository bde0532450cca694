"""The history: every visit, stay and exposure of the retention period, on disk.

PostgreSQL tables partitioned by UTC day in production, SQLite tables in the data folder when
embedded. A projection writes it from the log, each batch with its tracking position in one
transaction; a day past retention is dropped whole, its log rows with it. The hot read models
(Redis, or process memory) keep only what a check-in needs now: tokens, venues, open visits.
"""
