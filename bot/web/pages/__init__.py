"""The console's pages, one module each; every module defines ``PAGE``
(:class:`bot.web.layout.Page`). :data:`bot.web.routes.PAGES` lists them in navigation order.
"""
