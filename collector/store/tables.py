"""Table definitions for queries (SQLAlchemy Core). The migrations create them; keep the two in step."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

assets = Table(
    "assets",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("site", String(64)),
    Column("role", String(64)),
    Column("tier", String(16)),
    Column("labels_source", String(16), nullable=False),
    Column("parents", Text, nullable=False),  # JSON list of asset names
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_report_at", Float),
)

agent_tokens = Table(
    "agent_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("asset", String(63), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
)

report_streams = Table(
    "report_streams",
    metadata,
    Column("asset", String(63), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("applied", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

asset_latest = Table(
    "asset_latest",
    metadata,
    Column("asset", String(63), primary_key=True),
    Column("stream", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(200), nullable=False),
    Column("asset", String(63), nullable=False),
    Column("site", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),  # bumped by every change: the compare-and-set token
    Column("owner", String(64)),
    Column("opened_at", Float, nullable=False),
    Column("acknowledged_at", Float),
    Column("acknowledged_by", String(64)),
    Column("resolved_at", Float),
    Column("resolved_by", String(64)),
    Column("reviewed_at", Float),
    Column("reviewed_by", String(64)),
    Column("closed_at", Float),
    Column("closed_by", String(64)),
    Column("all_cleared_at", Float),  # when the last active fault cleared (the quiet period runs from here)
    Column("rca", Text),
    Column("hold", Text),  # why notifications are held right now, if they are
    Column("notify_since", Float),  # escalation counts from here (the first notify decision); None while held
)

faults = Table(
    "faults",
    metadata,
    Column("fingerprint", String(200), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("asset", String(63), nullable=False),
    Column("key", String(256), nullable=False),
    Column("type", String(16), nullable=False),
    Column("base_severity", Integer, nullable=False),
    Column("severity", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("value", Float),
    Column("active", Boolean, nullable=False),
    Column("since", Float, nullable=False),
    Column("fired_at", Float, nullable=False),
    Column("cleared_at", Float),
    Column("incident_id", Integer),
    Column("consequence_of", String(63)),  # the parent asset whose outage this fault follows from
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("data", Text, nullable=False),
)

preventive_measures = Table(
    "preventive_measures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("due", String(10), nullable=False),
    Column("done_at", Float),
    Column("done_by", String(64)),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(64), nullable=False),
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", Text, nullable=False),  # JSON: assets, sites, roles, labels
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("recurrence", Text),  # JSON: cron, duration, timezone
    Column("ended_at", Float),
    Column("end_handled_at", Float),  # faults still present at the end were raised
    Column("created_at", Float, nullable=False),
    Column("created_by", String(64), nullable=False),
)

fault_reports = Table(  # faults reported by people; the engine classifies them like any other
    "fault_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset", String(63)),
    Column("site", String(64)),
    Column("description", Text, nullable=False),
    Column("type", String(16), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("reporter", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("incident_id", Integer),  # set once the engine has opened (or joined) an incident
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),  # Fernet: AES-128-CBC + HMAC-SHA256, key outside the database
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(64), nullable=False),
)

notifications = Table(  # the outbox: recorded before sending, updated after
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer),
    Column("step_key", String(64)),
    Column("person", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("address", String(256)),
    Column("kind", String(32), nullable=False),
    Column("severity", Integer),
    Column("language", String(8), nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("ack_url", Text),
    Column("state", String(16), nullable=False),  # pending | sent | merged | given_up
    Column("attempts", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),  # the next attempt
    Column("sent_at", Float),
    Column("last_error", Text),
    Column("merged_into", Integer),  # the digest that carried it
    Column("contact_index", Integer, nullable=False),  # which of the person's contacts this goes to
)

escalation_steps = Table(  # the steps already taken: inserted once (compare-and-set), never sent twice
    "escalation_steps",
    metadata,
    Column("incident_id", Integer, primary_key=True),
    Column("step_key", String(64), primary_key=True),
    Column("done_at", Float, nullable=False),
)

ack_links = Table(
    "ack_links",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("incident_id", Integer, nullable=False),
    Column("person", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
)

channel_state = Table(
    "channel_state",
    metadata,
    Column("channel", String(32), primary_key=True),
    Column("broken_since", Float),
    Column("reason", Text),
)

security_reports = Table(
    "security_reports",
    metadata,
    Column("incident_id", Integer, primary_key=True),
    Column("deadline", Float, nullable=False),
    Column("reported_at", Float),
    Column("reported_by", String(64)),
    Column("reference", Text),
)

runbook_runs = Table(  # one row per run; ``state`` moves queued → running ⇄ waiting_approval → a final state
    "runbook_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("runbook", String(64), nullable=False),
    Column("asset", String(63), nullable=False),
    Column("incident_id", Integer),
    Column("fault", String(256)),  # the fingerprint of the fault that started it
    Column("parent_run", Integer),  # set for a run started by a `runbook` step
    Column("started_by", String(64), nullable=False),  # a person, or "schoolops" for automatic runs
    Column("automatic", Boolean, nullable=False),
    Column("state", String(24), nullable=False),
    Column("variables", Text, nullable=False),  # JSON: extra variables given when it was started
    Column("requested_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("next_step", Integer, nullable=False),  # where a run waiting for approval resumes
    Column("result", Text),  # why it ended as it did, for people
)

runbook_steps = Table(  # what each step ran and what came back (secrets masked and redacted)
    "runbook_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(64), nullable=False),  # "restart" or "restart/verify"
    Column("action", String(16), nullable=False),
    Column("command", Text, nullable=False),
    Column("status", String(16), nullable=False),  # ok | failed | timed_out | skipped | waiting | denied | expired
    Column("exit_status", Integer),
    Column("output", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration", Float, nullable=False),
)

runbook_locks = Table(  # one runbook at a time per asset; a row outlives a collector restart
    "runbook_locks",
    metadata,
    Column("asset", String(63), primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("acquired_at", Float, nullable=False),
)

runbook_approvals = Table(
    "runbook_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("step", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(64), nullable=False),  # who started the run: they may not approve it
    Column("requested_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decision", String(16)),  # approved | denied | expired; None while pending
    Column("decided_by", String(64)),
    Column("decided_at", Float),
    Column("note", Text),
)

patrol_runs = Table(  # one run of a checklist; state: running → done → signed → reviewed
    "patrol_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("checklist", String(64), nullable=False),
    Column("started_by", String(64), nullable=False),  # a person, or "schedule"
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("state", String(16), nullable=False),
    Column("signed_by", String(64)),  # the patroller's signature
    Column("signed_at", Float),
    Column("reviewed_by", String(64)),  # the director's (or delegate's)
    Column("reviewed_at", Float),
    Column("review_note", Text),
    Column("total", Integer),  # the number of checks, known once the run starts (for its progress)
)

patrol_results = Table(  # one row per item and asset (and key: a mountpoint, an interface…)
    "patrol_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("section", String(64), nullable=False),
    Column("item", String(64), nullable=False),
    Column("asset", String(63), nullable=False),  # "" for an item about the site as a whole (manual)
    Column("key", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # normal | abnormal | not_checked | pending (manual, not yet filled)
    Column("value", Float),
    Column("evidence", Text, nullable=False),  # the value or command output, trimmed
    Column("reason", Text, nullable=False),  # why not checked
    Column("handling", String(24), nullable=False),  # "" | handled | recorded (recorded and reported)
    Column("handler", String(64)),  # who filled in a manual item / handled it
    Column("note", Text),
    Column("fault", String(256)),  # the fault it opened or updated
    Column("at", Float, nullable=False),
)

asset_log = Table(  # lines of note per asset: agents' log watches, device traps, configuration changes
    "asset_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset", String(63), nullable=False),
    Column("source", String(80), nullable=False),  # log:WATCH | trap | config
    Column("text", Text, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_asset_log_at", "at"),
    Index("ix_asset_log_asset_at", "asset", "at"),
)

logins = Table(  # a person's web login: the on-call file says who they are and their roles
    "logins",
    metadata,
    Column("person", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),  # Argon2id
    Column("totp_secret", LargeBinary),  # encrypted with the collector's secret key; None: no second factor
    Column("totp_last_step", BigInteger),  # a TOTP code works once
    Column("failed", Integer, nullable=False, server_default="0"),  # failed attempts in a row
    Column("locked_until", Float),
    Column("updated_at", Float, nullable=False),
)

sessions = Table(  # people logged in to the web pages; the cookie holds the id, the store its hash
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("person", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("second_factor_ok", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

upgrades = Table(  # one request: a plan's pre-checks only (check), the upgrade itself (run), or a rollback by hand
    "upgrades",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan", String(64), nullable=False),
    Column("source", Text, nullable=False),  # the file it was read from
    Column("plan_text", Text, nullable=False),  # the file as read when requested: what is approved is what runs
    Column("digest", String(64), nullable=False),  # sha256 of plan_text
    Column("mode", String(16), nullable=False),  # check | run | rollback
    Column("of_upgrade", Integer),  # a rollback by hand: the upgrade it undoes
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("state", String(24), nullable=False),
    Column("approval_role", String(16)),
    Column("expires_at", Float),  # the approval request lapses then
    Column("decided_by", String(64)),
    Column("decided_at", Float),
    Column("decision_note", Text),
    Column("not_before", Float),  # the window's start
    Column("window_id", Integer),  # the maintenance window opened for it
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("result", Text),  # how it ended, for people
    Column("outcome", Text, nullable=False),  # JSON: assets, batches, values before and after
)

upgrade_steps = Table(  # each step and check, per asset and phase, with what came back (secrets redacted)
    "upgrade_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("upgrade_id", Integer, nullable=False, index=True),
    Column("phase", String(16), nullable=False),  # pre_checks | backup | execute | post_checks | rollback | after_rollback
    Column("batch", Integer),
    Column("asset", String(63), nullable=False),
    Column("name", String(160), nullable=False),
    Column("action", String(16), nullable=False),
    Column("command", Text, nullable=False),
    Column("status", String(16), nullable=False),  # ok | failed | timed_out | skipped
    Column("exit_status", Integer),
    Column("output", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration", Float, nullable=False),
)
