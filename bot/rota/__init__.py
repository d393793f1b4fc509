"""The 普法学法微课堂 lecture rotas (a feature: see ``feature.py``).

- ``calendar`` — which unit lectures at which meeting (pure);
- ``plan`` — which reminder or escalation is due to whom at a moment (pure);
- ``config`` — the ``PUFA_ROTA_*`` offsets;
- ``store`` — reading the calendar; ``service`` — the tick and every change, with audit;
- ``texts`` — the messages; ``dialog`` — ``/duty``; ``cli`` — ``pufa rota …``;
- ``ical`` — calendar feeds; ``report`` — appraisal figures; ``robot`` — WeCom group robots;
- ``demo`` — sample meetings for ``pufa seed --demo``.
"""
