"""What every scenario-file model shares (``sites.model_base``): frozen strict models and
registry-name checks."""

from __future__ import annotations

from sites.model_base import FrozenStrict as Strict
from sites.model_base import name_of, one_of

__all__ = ["Strict", "name_of", "one_of"]
