"""Config loading: a bad file is refused with a message naming the file, the line and the key to fix.

The target types are the real ones the agent and the collector load (``AgentConfig``,
``CollectorSettings``), so these tests also pin how their validation reads to an operator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import AgentConfig
from collector.settings import CollectorSettings
from schoolops import ConfigError, conf

# lines 1-4 of every agent config below
AGENT_HEAD = """\
collector:
  url: https://collector.school.lan:8750
  token_file: /etc/schoolops/token
state_dir: /var/lib/schoolops-agent
"""


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path, type_: type = AgentConfig) -> str:
    with pytest.raises(ConfigError) as info:
        conf.load_file(path, type_)
    return str(info.value)


def test_a_valid_file_loads_with_units_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "interval: 30s\nspool:\n  max_bytes: 16MiB\n  max_age: 2d\n")
    config = conf.load_file(path, AgentConfig)
    assert config.interval == 30.0
    assert (config.spool.max_bytes, config.spool.max_age) == (16 * 1024 * 1024, 2 * 86400.0)
    assert config.collector.token_file == "/etc/schoolops/token"


def test_a_type_error_names_file_line_and_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "probes:\n  cpu: true\n  memory: sometimes\n")
    message = load_error(path)
    assert message.startswith(f"{path}:7: probes.memory: ")
    assert "bool" in message


def test_a_bad_duration_names_the_line_and_quotes_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "log:\n  level: info\ninterval: 15 parsecs\n")
    message = load_error(path)
    assert message.startswith(f"{path}:7: interval: ")
    assert "'15 parsecs'" in message


def test_a_bad_size_names_the_nested_key(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "spool:\n  max_age: 1d\n  max_bytes: lots\n")
    assert load_error(path).startswith(f"{path}:7: spool.max_bytes: ")


def test_a_bad_regex_in_a_log_watch_names_the_entry_and_the_pattern(tmp_path: Path) -> None:
    text = AGENT_HEAD + (
        "probes:\n"                      # 5
        "  logs:\n"                      # 6
        "    - name: auth\n"             # 7
        "      path: /var/log/auth.log\n"
        "      patterns: [ok]\n"
        "    - name: kern\n"             # 10
        "      path: /var/log/kern.log\n"
        "      patterns:\n"
        "        - 'error'\n"
        "        - '(unclosed'\n"
    )
    path = write(tmp_path, text)
    message = load_error(path)
    # the line is the entry's `patterns` key; the reason quotes the bad pattern
    assert message.startswith(f"{path}:12: probes.logs[1].patterns: ")
    assert "'(unclosed'" in message and "regular expression" in message


def test_a_command_whose_argv0_is_not_absolute_is_refused_at_its_entry(tmp_path: Path) -> None:
    text = AGENT_HEAD + "probes:\n  commands:\n    - name: disk\n      argv: [check_disk, -w, '20%']\n"
    message = load_error(write(tmp_path, text))
    # a check across fields points at the field its reason names first: argv, on line 8
    assert ":8: probes.commands[0].argv: " in message
    assert "absolute" in message and "'check_disk'" in message


def test_a_misspelled_key_points_at_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "intervall: 15s\n")
    message = load_error(path)
    assert message.startswith(f"{path}:5: intervall: ")
    assert "unknown field" in message


def test_a_misspelled_nested_key_names_its_full_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "spool:\n  max_age: 1d\n  max_byte: 5MB\n")
    assert load_error(path).startswith(f"{path}:7: spool.max_byte: ")


def test_a_misspelled_section_points_at_its_own_line_not_its_first_child(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "probez:\n  cpu: false\n")
    assert load_error(path).startswith(f"{path}:5: probez: ")


def test_a_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD.replace("state_dir: /var/lib/schoolops-agent\n", "interval: 15s\n"))
    message = load_error(path)
    assert message.startswith(f"{path}:")
    assert ": state_dir: " in message and "missing required field" in message


def test_a_missing_nested_required_key_names_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "collector:\n  token_file: /etc/t\nstate_dir: /s\n")
    assert ": collector.url: " in load_error(path)


def test_invalid_yaml_syntax_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, AGENT_HEAD + "probes:\n  commands: [one\n  cpu: true\n")
    message = load_error(path)
    assert message.startswith(f"{path}:7: not valid YAML")


def test_an_empty_agent_file_names_the_first_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_error(path) == f"{path}: collector: Object missing required field `collector`"


def test_an_empty_settings_file_without_required_keys_is_refused_but_defaults_fill_the_rest(tmp_path: Path) -> None:
    assert ": data_dir: " in load_error(write(tmp_path, "# nothing yet\n", "collector.yaml"), CollectorSettings)
    settings = conf.load_file(write(tmp_path, "data_dir: /var/lib/schoolops\n", "collector.yaml"), CollectorSettings)
    assert (settings.listen.host, settings.listen.port, settings.tls) == ("127.0.0.1", 8750, None)
    assert settings.store_url == "sqlite:////var/lib/schoolops/schoolops.db"


def test_a_top_level_list_is_refused(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "- collector\n- state_dir\n"))
    assert message.startswith(f"{tmp_path / 'agent.yaml'}:1: (top level): ")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "agent.yaml"
    assert load_error(missing) == f"{missing}: file not found"


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes(b"state_dir: /caf\xe9\n")
    assert load_error(path).startswith(f"{path}: cannot read")


def test_a_settings_range_check_names_its_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "data_dir: /d\ningest:\n  max_body_bytes: 1GB\n", "collector.yaml")
    message = load_error(path, CollectorSettings)
    assert message.startswith(f"{path}:3: ingest.max_body_bytes: ")
    assert "between 1KiB and 64MiB" in message


def test_an_interval_out_of_range_names_its_line_and_key(tmp_path: Path) -> None:
    # checked across the struct in AgentConfig.__post_init__, still reported at the interval's own line
    path = write(tmp_path, AGENT_HEAD + "log:\n  level: info\ninterval: 0.5s\n")
    message = load_error(path)
    assert message.startswith(f"{path}:7: interval: ")
    assert "between 1s and 1d" in message


def test_load_text_uses_the_source_name_given() -> None:
    with pytest.raises(ConfigError, match=r"^inline:1: interval: "):
        conf.load_text("interval: []\n", AgentConfig, source="inline")


def test_a_retry_max_below_one_second_points_at_retry_max(tmp_path: Path) -> None:
    text = AGENT_HEAD.replace("  token_file:", "  timeout: 5s\n  retry_max: 0.5s\n  token_file:")
    path = write(tmp_path, text)  # timeout on line 3, retry_max on line 4
    assert load_error(path).startswith(f"{path}:4: collector.retry_max: ")
