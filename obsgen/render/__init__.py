"""Renderers: from rules and scenarios to files. They know nothing of component kinds."""
