"""The survey product: definitions (``schema``), answering (``engine``) and scoring (``scoring``).

The modules in this package are pure: no database, no HTTP. Only the catalog loader in
:mod:`surveys.schema` reads files (the YAML definitions in ``surveys/catalog``).
"""
