"""The survey feature: public-satisfaction surveys on the mobile page, the JSON API and in chat.

Like every feature it offers the composition root one ``FEATURE`` (``feature.py``): its
catalog (the YAML definitions in ``surveys/catalog``), its routes (``routes.py``: the JSON API
in ``api.py`` and the mobile pages in ``h5/``), its dialog (``dialog.py``: ``/survey`` and the
``s_`` / ``t_`` deep links), its commands (``cli.py``) and its seeds (``demo.py``).

Inside, the layers point down:

- edges — ``cli``, ``api``, ``h5``, ``dialog``, ``routes``, ``feature``;
- HTTP intake shared by the two web edges — ``intake``, ``keys``, ``ratelimit``,
  ``committer`` (group commit);
- domain with storage — ``submission`` (storing a response: the one entry point every channel
  uses), ``state`` (open or closed, catalog sync), ``results`` (figures from the database),
  ``invitations``, ``tokens``, ``reports`` (table, JSON, XLSX);
- pure — ``schema`` (definitions), ``engine`` (next question, validation), ``scoring``
  (satisfaction statistics), ``appraisal`` (民主测评 rules), ``respondents`` (pseudonyms).

Nothing here imports ``bot``; the pure modules import neither the database nor HTTP.
"""
