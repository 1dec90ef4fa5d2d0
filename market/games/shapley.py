"""Shapley value: exact over the 2^n table, or sampled for a value function too costly to tabulate.

phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S)).

The Shapley value is linear in v, so it applies to a cost table directly: the result is each
player's share of the cost (and equals standalone cost minus the Shapley value of the savings
game). No conversion to the profit form is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from market.games.game import Game, popcounts

MAX_SAMPLED_PLAYERS = 62  # coalitions are int64 bitmasks


def shapley_weights(n_players: int) -> np.ndarray:
    """w(s) = s! (n-1-s)! / n! = 1 / (n * C(n-1, s)) for s = 0 .. n-1."""
    return np.array([1.0 / (n_players * math.comb(n_players - 1, s)) for s in range(n_players)])


def shapley_value(game: Game) -> np.ndarray:
    """Exact Shapley value, in the game's own kind (cost shares for a cost game).

    For player i the table is viewed as shape (2^(n-1-i), 2, 2^i): index 1 on the middle axis
    is "i in S", so v(S + i) - v(S) for all S not containing i is one vectorised subtraction.
    O(n 2^n) time, O(2^n) extra memory.
    """
    n = game.n_players
    weight_by_size = shapley_weights(n)[np.minimum(popcounts(n), n - 1)]
    values = game.values
    phi = np.empty(n)
    for i in range(n):
        view = values.reshape(1 << (n - 1 - i), 2, 1 << i)
        weights = weight_by_size.reshape(1 << (n - 1 - i), 2, 1 << i)[:, 0, :]
        phi[i] = np.sum(weights * (view[:, 1, :] - view[:, 0, :]))
    return phi


@dataclass(frozen=True, eq=False)
class ShapleyEstimate:
    """A sampled Shapley value with a normal-approximation confidence interval per player."""

    players: tuple[str, ...]
    mean: np.ndarray
    half_width: np.ndarray
    confidence: float
    samples_per_player: int
    evaluations: int  # distinct coalitions whose value was computed

    @property
    def lower(self) -> np.ndarray:
        return self.mean - self.half_width

    @property
    def upper(self) -> np.ndarray:
        return self.mean + self.half_width


class _CachedValue:
    """v on bitmasks; each coalition is computed at most once (v may be a planner run)."""

    def __init__(self, players: tuple[str, ...], value: Callable[[frozenset[str]], float] | Game):
        self._players = players
        self._table = value.values if isinstance(value, Game) else None
        self._function = None if isinstance(value, Game) else value
        self._cache: dict[int, float] = {0: 0.0}

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        if self._table is not None:
            return self._table[masks]
        unique, inverse = np.unique(masks, return_inverse=True)
        values = np.array([self._one(int(mask)) for mask in unique])
        return values[inverse].reshape(masks.shape)

    def _one(self, mask: int) -> float:
        if mask not in self._cache:
            members = frozenset(p for i, p in enumerate(self._players) if mask >> i & 1)
            assert self._function is not None  # a tabulated game has every value cached
            self._cache[mask] = float(self._function(members))
        return self._cache[mask]

    @property
    def evaluations(self) -> int:
        return len(self._cache) - 1


def sampled_shapley(
    players: Sequence[str],
    value: Callable[[frozenset[str]], float] | Game,
    *,
    rng: np.random.Generator,
    samples: int,
    confidence: float = 0.95,
    stratified: bool = False,
) -> ShapleyEstimate:
    """Monte-Carlo Shapley value of ``value`` (a function of a set of player names, or a Game).

    ``samples`` marginal contributions are drawn per player (stratified: about that many,
    see ``samples_per_player`` on the result).

    * Permutation sampling (default; Castro, Gómez & Tejada 2009): each of ``samples`` uniform
      random orders gives every player one marginal contribution v(P_i + i) - v(P_i) where P_i
      are its predecessors. The estimates sum to v(N) exactly.
    * Stratified (``stratified=True``; Maleki et al. 2013): phi_i = (1/n) sum_k mu_{i,k} where
      mu_{i,k} is the mean marginal contribution to a uniform random coalition of size k not
      containing i. Sizes 0 and n-1 are single coalitions (computed exactly); the budget is
      split evenly over the other sizes, and var(phi_i) = (1/n^2) sum_k s_{i,k}^2 / m_k.

    The interval is mean +/- z * standard error with z the normal quantile for ``confidence``.
    """
    players = tuple(players)
    n = len(players)
    if not 1 <= n <= MAX_SAMPLED_PLAYERS:
        raise ValueError(f"need 1 to {MAX_SAMPLED_PLAYERS} players, got {n}")
    if samples < 2:
        raise ValueError(f"samples must be >= 2 (a variance needs two), got {samples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    evaluate = _CachedValue(players, value)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    sampler = _stratified if stratified else _permutations
    mean, standard_error, drawn = sampler(n, evaluate, rng, samples)
    return ShapleyEstimate(
        players=players,
        mean=mean,
        half_width=z * standard_error,
        confidence=confidence,
        samples_per_player=drawn,
        evaluations=evaluate.evaluations,
    )


def _permutations(n, evaluate, rng, samples):
    orders = rng.permuted(np.tile(np.arange(n), (samples, 1)), axis=1)
    bits = np.left_shift(np.int64(1), orders.astype(np.int64))
    after = np.cumsum(bits, axis=1)  # distinct bits, so the running sum is the running union
    marginal = evaluate(after) - evaluate(after - bits)
    contributions = np.empty((samples, n))
    contributions[np.arange(samples)[:, None], orders] = marginal
    mean = contributions.mean(axis=0)
    standard_error = contributions.std(axis=0, ddof=1) / math.sqrt(samples)
    return mean, standard_error, samples


def _stratified(n, evaluate, rng, samples):
    if n == 1:
        whole = evaluate(np.array([1], dtype=np.int64))
        return whole.astype(float), np.zeros(1), 1
    middle_sizes = range(1, n - 1)
    per_stratum = max(2, (samples - 2) // max(1, len(middle_sizes)))
    mean = np.zeros(n)
    variance = np.zeros(n)
    everyone = (1 << n) - 1
    for i in range(n):
        bit = np.int64(1 << i)
        others = np.array([j for j in range(n) if j != i])
        exact = np.array([0, everyone ^ (1 << i)], dtype=np.int64)  # sizes 0 and n-1
        mean[i] += np.sum(evaluate(exact | bit) - evaluate(exact))
        for size in middle_sizes:
            # a uniform size-k subset of the others: the first k of a random order
            picks = np.argsort(rng.random((per_stratum, n - 1)), axis=1)[:, :size]
            masks = np.sum(np.left_shift(np.int64(1), others[picks].astype(np.int64)), axis=1)
            marginal = evaluate(masks | bit) - evaluate(masks)
            mean[i] += marginal.mean()
            variance[i] += marginal.var(ddof=1) / per_stratum
    return mean / n, np.sqrt(variance) / n, 2 + per_stratum * len(middle_sizes)
