"""Live's rules, free of SQL and HTTP."""
