"""Rendering of window and hall screens, tickets and voice announcements."""
