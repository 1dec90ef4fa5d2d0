"""A transferable-utility game given as a table: one value per coalition, indexed by bitmask.

Coalition ``S`` is the integer whose bit ``i`` is set when ``players[i]`` is in ``S``;
``values[S]`` is v(S) (``values[0] = 0`` is the empty coalition).

Two kinds of game are read:

* ``profit``: v(S) is what S can earn alone; players want more.
* ``cost``: c(S) is what S pays alone; players want to pay less.

Every solution concept in this package is computed on the *profit form* of the game:
v = c for profit games and v = -c for cost games, with allocation y = -x. This mapping turns
"x(S) <= c(S)" (core of a cost game) into "y(S) >= v(S)" (core of a profit game) and the cost
excess x(S) - c(S) into the profit excess v(S) - y(S), so every definition carries over exactly.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sites.errors import InputError

MAX_PLAYERS = 24  # 2^24 coalitions of float64 is 128 MiB: beyond that a table is the wrong tool
COALITION_SEPARATOR = "+"


class GameKind(enum.Enum):
    COST = "cost"
    PROFIT = "profit"

    @property
    def sign(self) -> float:
        """Factor that maps this kind's values to the profit form (v = sign * table)."""
        return -1.0 if self is GameKind.COST else 1.0


def popcounts(n_players: int) -> np.ndarray:
    """|S| for every coalition bitmask 0 .. 2^n - 1."""
    return np.bitwise_count(np.arange(1 << n_players, dtype=np.int64)).astype(np.int64)


def coalition_sums(shares: np.ndarray) -> np.ndarray:
    """x(S) = sum_{i in S} x_i for every bitmask S, built by doubling: O(2^n)."""
    shares = np.asarray(shares, dtype=float)
    sums = np.zeros(1 << len(shares))
    for i, share in enumerate(shares):
        width = 1 << i
        sums[width : 2 * width] = sums[:width] + share
    return sums


def membership_matrix(masks: np.ndarray, n_players: int) -> np.ndarray:
    """0/1 matrix with one row per coalition mask and one column per player."""
    masks = np.asarray(masks, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n_players)) & 1).astype(float)


@dataclass(frozen=True, eq=False)
class Game:
    """A TU game on ``players`` with ``values[mask]`` = v(S) (or c(S) for a cost game).

    ``values`` is copied and made read-only, so a ``Game`` can be shared freely.
    """

    players: tuple[str, ...]
    kind: GameKind
    values: np.ndarray

    def __post_init__(self) -> None:
        players = tuple(self.players)
        if not players:
            raise ValueError("a game needs at least one player")
        if len(set(players)) != len(players):
            raise ValueError(f"duplicate player names in {players}")
        if len(players) > MAX_PLAYERS:
            raise ValueError(f"at most {MAX_PLAYERS} players, got {len(players)}")
        values = np.array(self.values, dtype=float)
        if values.shape != (1 << len(players),):
            raise ValueError(f"values must have length 2^{len(players)}, got {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("values must be finite")
        if values[0] != 0:
            raise ValueError(f"the empty coalition must be worth 0, got {values[0]}")
        values.setflags(write=False)
        object.__setattr__(self, "players", players)
        object.__setattr__(self, "kind", GameKind(self.kind))
        object.__setattr__(self, "values", values)

    # ----- constructors ---------------------------------------------------------------------

    @classmethod
    def from_function(
        cls,
        players: Sequence[str],
        kind: GameKind | str,
        value: Callable[[frozenset[str]], float],
    ) -> Game:
        """Tabulate ``value`` on all 2^n coalitions (``value`` is never called on the empty set)."""
        players = tuple(players)
        table = np.zeros(1 << len(players))
        for mask in range(1, len(table)):
            table[mask] = float(value(frozenset(_members(players, mask))))
        return cls(players, GameKind(kind), table)

    @classmethod
    def from_mapping(cls, data: object, source: str = "<game>") -> Game:
        """Build from the game-file structure ``{"players", "kind", "values"}``, validated.

        Raises :class:`sites.errors.InputError` naming the field or coalition at fault.
        """
        return _parse_game(data, source)

    @classmethod
    def from_json_file(cls, path: str | Path) -> Game:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(source, "", f"cannot read file ({error.strerror})") from error
        try:
            data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except _DuplicateKeyError as error:
            raise InputError(source, error.field, "appears twice in the file") from error
        except json.JSONDecodeError as error:
            raise InputError(
                source,
                "",
                f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            ) from error
        return _parse_game(data, source)

    # ----- queries --------------------------------------------------------------------------

    @property
    def n_players(self) -> int:
        return len(self.players)

    @property
    def grand_coalition(self) -> int:
        return (1 << self.n_players) - 1

    @property
    def grand_value(self) -> float:
        return float(self.values[self.grand_coalition])

    @property
    def standalone_values(self) -> np.ndarray:
        """v({i}) per player, in the game's own kind (standalone cost for a cost game)."""
        return self.values[1 << np.arange(self.n_players)]

    def mask_of(self, coalition: Iterable[str]) -> int:
        index = {name: i for i, name in enumerate(self.players)}
        mask = 0
        for name in coalition:
            if name not in index:
                raise KeyError(f"unknown player {name!r}")
            mask |= 1 << index[name]
        return mask

    def members(self, mask: int) -> tuple[str, ...]:
        return tuple(_members(self.players, mask))

    def coalition_name(self, mask: int) -> str:
        return COALITION_SEPARATOR.join(self.members(mask)) or "{}"

    def value(self, coalition: Iterable[str]) -> float:
        return float(self.values[self.mask_of(coalition)])

    # ----- conversions ----------------------------------------------------------------------

    def profit_form(self) -> Game:
        """The profit game with the same solutions: v = c negated for a cost game, else self."""
        if self.kind is GameKind.PROFIT:
            return self
        return Game(self.players, GameKind.PROFIT, -self.values)

    def to_kind_allocation(self, profit_shares: np.ndarray) -> np.ndarray:
        """Map an allocation of :meth:`profit_form` back to this game's kind (cost shares)."""
        return self.kind.sign * np.asarray(profit_shares, dtype=float)

    def from_kind_allocation(self, shares: np.ndarray) -> np.ndarray:
        """Map an allocation in this game's kind to the profit form."""
        return self.kind.sign * np.asarray(shares, dtype=float)

    def savings_game(self) -> Game:
        """The zero-normalised profit game of what cooperation adds.

        cost game:   s(S) = sum_{i in S} c({i}) - c(S)   (savings)
        profit game: s(S) = v(S) - sum_{i in S} v({i})   (surplus)

        s = profit_form + additive vector, so it is strategically equivalent to the profit form
        and every covariant rule (Shapley, nucleolus, ...) commutes with the conversion:
        x_i = c({i}) - y_i for a cost game, x_i = v({i}) + y_i for a profit game.
        """
        standalone = self.profit_form().standalone_values
        surplus = self.profit_form().values - coalition_sums(standalone)
        surplus[0] = 0.0
        return Game(self.players, GameKind.PROFIT, surplus)

    def allocation_from_savings(self, savings_shares: np.ndarray) -> np.ndarray:
        """Turn a split of :meth:`savings_game` into shares of this game (cost or profit)."""
        standalone = self.profit_form().standalone_values
        return self.to_kind_allocation(standalone + np.asarray(savings_shares, dtype=float))

    def transformed(self, scale: float, shift: Sequence[float]) -> Game:
        """Strategically equivalent game w(S) = scale * v(S) + sum_{i in S} shift_i (scale > 0)."""
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        table = scale * self.values + coalition_sums(np.asarray(shift, dtype=float))
        return Game(self.players, self.kind, table)

    def to_mapping(self) -> dict:
        """The game-file structure (inverse of :meth:`from_mapping`)."""
        return {
            "players": list(self.players),
            "kind": self.kind.value,
            "values": {
                self.coalition_name(m): float(self.values[m]) for m in range(1, len(self.values))
            },
        }


def _members(players: Sequence[str], mask: int) -> Iterable[str]:
    return (name for i, name in enumerate(players) if mask >> i & 1)


# ----- parsing and validation ------------------------------------------------------------

_TOP_LEVEL_FIELDS = ("players", "kind", "values")
FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # not a bool, not NaN


class GameFile(BaseModel):
    """The game-file format; pydantic checks the shapes, ``to_game`` the coalition keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    players: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1,
                                                               max_length=MAX_PLAYERS)
    kind: GameKind
    values: dict[str, FiniteNumber]

    def to_game(self, source: str) -> Game:
        players = tuple(self.players)
        _check_players(players, source)
        return Game(players, self.kind, _value_table(self.values, players, source))


class _DuplicateKeyError(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            # json has already lost the parent path here; "values.<key>" is by far the likely spot
            field = key if key in _TOP_LEVEL_FIELDS else f"values.{key}"
            raise _DuplicateKeyError(field)
        seen[key] = value
    return seen


def _parse_game(data: object, source: str) -> Game:
    if not isinstance(data, Mapping):
        raise InputError(source, "", f"must be a JSON object, got {type(data).__name__}")
    try:
        spec = GameFile.model_validate(data)
    except ValidationError as error:
        raise InputError.from_validation(source, error, data) from None
    return spec.to_game(source)


def _check_players(players: tuple[str, ...], source: str) -> None:
    seen: set[str] = set()
    for position, name in enumerate(players):
        field = f"players[{position}]"
        if name != name.strip() or COALITION_SEPARATOR in name or not name.strip():
            raise InputError(
                source, field, f"{name!r}: names cannot contain '+' or surrounding spaces"
            )
        if name in seen:
            raise InputError(source, field, f"duplicate player {name!r}")
        seen.add(name)


def _value_table(raw: Mapping[str, float], players: tuple[str, ...], source: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(players)}
    table = np.zeros(1 << len(players))
    key_of_mask: dict[int, str] = {}
    for key, number in raw.items():
        field = f"values.{key}"
        mask = _parse_coalition_key(key, index, source, field)
        if mask in key_of_mask:
            raise InputError(source, field, f"same coalition as key {key_of_mask[mask]!r}")
        key_of_mask[mask] = key
        if mask == 0 and number != 0:
            raise InputError(source, field, f"the empty coalition must be worth 0, got {number}")
        table[mask] = number
    missing = [m for m in range(1, len(table)) if m not in key_of_mask]
    if missing:
        first = COALITION_SEPARATOR.join(_members(players, missing[0]))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(source, f"values.{first}", f"missing coalition{more}")
    return table


def _parse_coalition_key(key: str, index: Mapping[str, int], source: str, field: str) -> int:
    if not key.strip():
        return 0  # the empty coalition may be listed (with value 0)
    mask = 0
    for part in key.split(COALITION_SEPARATOR):
        name = part.strip()
        if not name:
            raise InputError(source, field, "empty player name in coalition key")
        if name not in index:
            raise InputError(source, field, f"unknown player {name!r}")
        bit = 1 << index[name]
        if mask & bit:
            raise InputError(source, field, f"player {name!r} appears twice in the coalition")
        mask |= bit
    return mask
