"""Running the site: the preflight (``manage.py doctor``). It sits above every app and reads them all."""
