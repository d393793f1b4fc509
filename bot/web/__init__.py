"""The web console under ``/admin/``: accounts, roles and the pages of the district office.

Server-rendered pages (aiohttp-jinja2) on a sub-application of the main aiohttp app, so the
console's middlewares (encrypted session cookie, security headers, CSRF check) apply to
``/admin/`` only. Each page is one module of :mod:`bot.web.pages` that declares a
:class:`~bot.web.layout.Page`; who may see what is decided in one table,
:data:`bot.web.auth.PERMISSIONS`.
"""
