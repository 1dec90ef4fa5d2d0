"""Market and incentives: pricing, settlement and the cooperative game toolkit."""

from market.games import *  # noqa: F403  (the public API is market.games.__all__)
from market.games import __all__ as __all__
