"""Transport adapters in front of the dialog runtime: Telegram, the console (and WeCom).

An adapter turns each platform event into one :class:`core.messages.Inbound`, hands it to the
runtime and renders the :class:`core.messages.Reply` values it gets back. Adapters hold no
business rules; the composition root (:mod:`bot.app`) decides which channels run.
"""
