"""The outbox: the one path every message pufa starts itself takes.

- ``queue`` — :func:`~bot.outbox.queue.enqueue` (called by features in the transaction of
  their decision), :func:`~bot.outbox.queue.recipients` (a role's chats) and push targets;
- ``sender`` — what a channel implements to send (transient and permanent failures);
- ``worker`` — claiming, pacing, retries and leases (:class:`~bot.outbox.worker.OutboxWorker`,
  started by ``pufa serve``); ``alerts`` — failures reported to the coordinator once;
- ``cli`` / ``feature`` — ``pufa notify`` and ``pufa outbox list|retry``.

The outbox imports no channel: the composition root gives it one sender per channel.
"""
