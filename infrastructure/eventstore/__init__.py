"""The event log: where aggregates are committed, and how their events are stored."""
