"""The live dashboard: ``/dashboard``, one static page (``page.html``) that reads the JSON API."""
