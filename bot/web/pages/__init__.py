"""The console's pages, one module each; every module defines ``PAGE``
(:class:`bot.web.layout.Page`), and :data:`bot.web.routes.PAGES` lists them in navigation
order: the dashboard, surveys, the lecture rota, the legal liaisons, notices, the outbox and
the audit log.

A page uses the features' domain modules (``bot.rota.service``, ``bot.volunteers.importer``,
``bot.outbox.notices``…), never their chat dialogs, commands or feature wiring
(``.importlinter``, contract "console-domain-only"). Adding a page:

1. write ``bot/web/pages/<name>.py`` with handlers ``async def view(request, user)`` (``user``
   is the logged-in :class:`~bot.web.auth.Principal`, already checked against the route's
   permission) and ``PAGE = Page(name, N_("Title"), "/<name>", "<name>.view", routes=(
   Route("GET", "/<name>", view, "<name>.view"), Route("POST", "/<name>/…", act,
   "<name>.manage"), …))``;
2. write ``bot/web/templates/<name>.html`` extending ``base.html``; every form carries
   ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`` (an upload form puts
   ``?csrf_token={{ csrf_token }}`` in its ``action`` instead);
3. add ``<name>.PAGE`` to :data:`bot.web.routes.PAGES`, and the permissions to
   :data:`bot.web.auth.PERMISSIONS` if they are new.

Handlers render with :func:`bot.web.layout.render`, scope a staff account to its township with
``user.township_scope(...)``, write every change with :func:`storage.audit.record` (actor
``user.actor``, ``before=`` and ``after=``) in the transaction that makes it, and answer a POST
with a redirect (``web.HTTPSeeOther``) after :func:`bot.web.common.flash` (or
:func:`bot.web.common.flash_error` with the reason, in the reader's language, when it could not
be done). An upload streams its file with :func:`bot.web.uploads.read_upload` and keeps what
it checked with :func:`bot.web.uploads.save_upload` until it is confirmed.
"""
