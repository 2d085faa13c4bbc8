"""Incidents, pure core: the lifecycle state machine, flap detection, maintenance windows and the
notify-or-hold decision. Data and ``now`` in, results out; the async shell performs the effects."""
