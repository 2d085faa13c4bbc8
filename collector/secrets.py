"""Credentials at rest, encrypted: SMTP passwords, robot keys, signing secrets, later SNMP and SSH secrets.

Values are encrypted with Fernet (AES-128-CBC and HMAC-SHA256, from `cryptography`) under a key kept
in a file beside the database (mode 0600), never in it: a copy of the database alone reveals nothing.
Config files name a secret; `schoolops secret set NAME` stores its value (read from stdin, never from
the command line, where it would land in shell history and the process list).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.store.tables import secrets

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}\Z")


class SecretError(CollectorError):
    pass


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecretError(f"{key_file} is readable by others (mode {mode:o}): chmod 600 it")
        self._fernet = Fernet(key_file.read_bytes().strip())

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretError(f"a stored secret does not decrypt with {self.key_file}: was the key replaced?") from None


def set_secret(conn: Connection, box: SecretBox, name: str, value: str, *, at: float, actor: str) -> None:
    if not NAME.match(name):
        raise SecretError(f"{name!r} is not a valid secret name: lowercase letters, digits, '.', '_', '-'")
    if not value:
        raise SecretError("the secret's value is empty")
    ciphertext = box.encrypt(value)
    updated = conn.execute(secrets.update().where(secrets.c.name == name)
                           .values(ciphertext=ciphertext, updated_at=at, updated_by=actor)).rowcount
    if not updated:
        conn.execute(secrets.insert().values(name=name, ciphertext=ciphertext, updated_at=at, updated_by=actor))


def get_secret(conn: Connection, box: SecretBox, name: str) -> str:
    row = conn.execute(sa.select(secrets.c.ciphertext).where(secrets.c.name == name)).one_or_none()
    if row is None:
        raise KeyError(name)
    return box.decrypt(bytes(row.ciphertext))


def list_secrets(conn: Connection) -> list[tuple[str, float, str]]:
    return [(r.name, r.updated_at, r.updated_by)
            for r in conn.execute(sa.select(secrets.c.name, secrets.c.updated_at, secrets.c.updated_by).order_by(secrets.c.name))]


def delete_secret(conn: Connection, name: str) -> bool:
    return conn.execute(secrets.delete().where(secrets.c.name == name)).rowcount == 1
