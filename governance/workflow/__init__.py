"""The promotion workflow: models, policies and gates, the services that are its only writers, and the
pages, API, admin and panels that call them."""
