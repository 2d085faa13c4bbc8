"""The schoolops agent: small, safe and quiet. It reports this host; it never listens, never obeys."""

from schoolops import SchoolopsError


class AgentError(SchoolopsError):
    """Root of the agent's own errors."""
