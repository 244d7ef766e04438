"""What the audit unit tests share."""

from __future__ import annotations

from tests.unit.engine.test_rules import CONFIG

__all__ = ["CONFIG"]
