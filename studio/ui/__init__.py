"""PySide6 user interface: a view plus wiring; all data and model work is delegated to services."""
