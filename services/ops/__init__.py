"""Ops console: watch the event streams, consumer lag, outbox backlogs and dead letters."""
