"""Running the site: the preflight (``manage.py doctor``) and the health check (``/healthz``).

Above every app: it reads them all, and no app imports it."""
