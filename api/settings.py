"""The live broker's settings: a frozen pydantic model filled from ``CARBONFED_*`` variables.

Every field can be set by an environment variable named ``CARBONFED_`` + the field in upper
case (``CARBONFED_DB_URL``, ``CARBONFED_ADMIN_TOKEN``, ``CARBONFED_PLAN_INTERVAL_S``...);
``carbonfed serve`` options override them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ENV_PREFIX = "CARBONFED_"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    db_url: str = "sqlite:///carbonfed.db"
    # None: the stored (hashed) token of an earlier start, or a new one generated and printed.
    admin_token: SecretStr | None = None
    # None: anyone may register a site; else registration needs this bearer token.
    registration_token: SecretStr | None = None
    # Seconds between automatic planning rounds; None: plan only when an admin asks.
    plan_interval_s: float | None = Field(None, gt=0)
    stale_after_s: float = Field(300.0, gt=0)  # a site without a fresh offer gets no new jobs
    # The broker's clock, in hours since its first start; time_scale > 1 runs it faster than
    # real time (3600: one simulated hour per second) so a federation can be simulated live.
    time_scale: float = Field(1.0, gt=0)
    slot_h: float = Field(1.0, gt=0)
    horizon_slots: int = Field(24, ge=1, le=24 * 14)
    carbon_price_usd_per_t: float = Field(0.0, ge=0)
    delay_cost_usd_per_gpu_h: float = Field(0.005, ge=0)
    transfer_gbps: float = Field(10.0, gt=0)
    solver_method: Literal["auto", "full", "lp-guided"] = "auto"
    solver_time_limit_s: float = Field(10.0, gt=0)
    solver_mip_gap: float = Field(0.01, ge=0, lt=1)
    solver_threads: int = Field(1, ge=1)
    max_batch_jobs: int = Field(1000, ge=1)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> Settings:
        """Settings from ``CARBONFED_*`` variables, then ``overrides`` (None values ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
