"""django-tenants' PostgreSQL backend with introspection scoped to the schemas on the search path (DESIGN §12)."""
