"""Notifications: people and on-call, messages in the reader's language, channels, escalation, delivery."""
