"""Passwords (Argon2id) and TOTP second factors (RFC 6238), with the rules people meet when they set them."""

from __future__ import annotations

import argon2
import pyotp

from collector import CollectorError

MIN_PASSWORD = 10
MAX_PASSWORD = 256
_HASHER = argon2.PasswordHasher()  # Argon2id, the library's current (RFC 9106 low-memory) parameters
ISSUER = "schoolops"


class WeakPassword(CollectorError):
    pass


def check_password_rules(password: str, person: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password is too long: at most {MAX_PASSWORD} characters")
    if person.lower() in password.lower():
        raise WeakPassword("the password must not contain the person's id")
    if len(set(password)) < 4:
        raise WeakPassword("the password repeats too few characters: use a passphrase")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, person: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=person, issuer_name=ISSUER)


def totp_step(secret: str, code: str, at: float, last_step: int | None) -> int | None:
    """The time step ``code`` is valid for at ``at`` (±1 step of 30 s for clock drift), or None: wrong,
    or already used (a code works once: its step must be newer than ``last_step``)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(at // totp.interval)
    for step in (now_step, now_step - 1, now_step + 1):
        if pyotp.utils.strings_equal(totp.at(step * totp.interval), code):
            return step if last_step is None or step > last_step else None
    return None
