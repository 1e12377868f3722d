"""Who may do what (权限): people's accounts and roles, sessions, API tokens, login throttling
and the audit log. The doors (web, CLI, bus) ask this package; the core knows nothing of it."""
