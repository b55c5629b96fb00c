"""The inventory service: Flask app factory, REST API, HTTP SD, SQLite/PostgreSQL storage.

Import `create_app` from `inventory.service.app`; importing this package does no work.
"""
