"""Binding chat accounts to roles with invite codes (a feature: see ``feature.py``).

- ``invites`` — creating and redeeming single-use, expiring codes (domain);
- ``dialog`` — ``/bind CODE`` and the ``b_`` deep link;
- ``cli`` — ``pufa invite staff|unit|coordinator``;
- ``feature`` — ``FEATURE``, what the composition root wires.
"""
