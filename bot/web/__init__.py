"""HTTP plumbing shared by every route: errors, locale, metrics middleware."""
