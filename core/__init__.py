"""The shared kernel: what every layer of pufa may import, and which imports none of them.

- :mod:`core.settings` — configuration (``PUFA_*`` variables);
- :mod:`core.errors` — one-line operator errors;
- :mod:`core.i18n` — translation (one Babel catalog per feature) and locale negotiation;
- :mod:`core.http` — the JSON error format, request locale and the HTTP middleware;
- :mod:`core.appkeys` — typed keys for what the composition root puts on the aiohttp app;
- :mod:`core.metrics` — the Prometheus registry of one app;
- :mod:`core.messages` — chat message types (``Inbound``, ``Reply``, ``Button``) shared by
  channels, the dialog runtime and the outbox;
- :mod:`core.payloads` — signed button payloads;
- :mod:`core.dialog` — what a feature's dialog sees of the runtime (``Step``, ``Flow``);
- :mod:`core.feature` — the shape every feature package offers the composition root;
- :mod:`core.cli` — helpers for feature commands (settings, event loop, table output);
- :mod:`core.clock` — the current time (everything below the edges takes ``now``).

Nothing here touches the database or the network at import time; nothing here imports
``bot``, ``surveys`` or ``storage`` (checked by import-linter in ``make test``).
"""
