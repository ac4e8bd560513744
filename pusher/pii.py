"""Masking of personal data before anything is shown to a person (terminal, alerts).

An email becomes `j***@example.com`, a phone `+4***67`: enough to recognise a known test
customer, never enough to read a real address. Hashes and customer ids are shown as they are.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL_RE = re.compile(r"([A-Za-z0-9._%+\-]+)@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
PHONE_RE = re.compile(r"\+\d{7,15}\b")   # E.164, as staging writes phones


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"{'+' if phone.startswith('+') else ''}{digits[:1]}***{digits[-2:]}"


def mask_text(text: str) -> str:
    """Every email and phone number in free text, masked."""
    text = EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    return PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


def mask(value: Any) -> Any:
    """Mask every string inside a JSON-like value (dicts, lists, scalars)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(item) for item in value]
    return value
