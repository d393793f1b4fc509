"""``python -m bot`` is the ``pufa`` command."""

from bot.cli import main

main()
