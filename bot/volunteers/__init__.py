"""The 法律明白人 registry: township staff register village legal liaisons, and everybody sees
which villages are short of the target (2 per village, 3 per poor village). A feature: see
``feature.py``.

- ``rules`` — what a valid name, gender, mobile number, background or village row is (pure);
- ``coverage`` — coverage figures and the weekly nudge's text (pure);
- ``store`` — database access: villages, liaisons sealed at rest, coverage, audit;
- ``tabular`` / ``importer`` — reading clerks' CSV/XLSX files, and the two imports;
- ``dialog`` — ``/register`` in chat;
- ``cli`` — ``pufa import villages|volunteers``, ``pufa volunteers …``;
- ``api`` — ``GET /api/v1/volunteers/coverage`` and ``GET /api/v1/volunteers``;
- ``nudge`` — the weekly reminder through the outbox; ``demo`` — sample liaisons;
- ``reports`` — tables, JSON, CSV and workbooks;
- ``feature`` — ``FEATURE``, what the composition root wires.
"""
