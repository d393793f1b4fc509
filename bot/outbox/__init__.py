"""The outbox: the one path every message pufa starts itself takes.

- ``queue`` — :func:`~bot.outbox.queue.enqueue` (called by features in the transaction of
  their decision), :func:`~bot.outbox.queue.recipients` (a role's chats) and push targets;
- the worker, pacing, retries and commands arrive with the outbox feature (``feature.py``).

The outbox imports no channel: the composition root gives it one sender per channel.
"""
