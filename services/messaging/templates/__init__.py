"""Templates: Jinja2 in a sandbox, with locale variants and a preview."""
