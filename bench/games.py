"""Timings for the game toolkit (a script, not a test): ``python bench/games.py``.

Exact Shapley on 10/15/20 players and the nucleolus on 6/10/14 players, on seeded random
games whose core is non-empty (both kinds below are convex, so the core is non-empty):

* airport-style cost games c(S) = max_{i in S} runway_i + sum_{i in S} extra_i (concave cost);
* profit games v = sum_T lambda_T u_T, a non-negative mix of random unanimity games u_T.
"""

from __future__ import annotations

import time

import numpy as np

from market import Game, GameKind, in_core, nucleolus, shapley_value
from market.games.game import coalition_sums


def airport_game(n_players: int, rng: np.random.Generator) -> Game:
    runway = rng.uniform(1.0, 100.0, n_players)
    extras = rng.uniform(0.0, 10.0, n_players)
    masks = np.arange(1 << n_players)
    longest = np.zeros(1 << n_players)
    for i in range(n_players):  # c(S) = max runway over S, built one player at a time
        has = (masks >> i) & 1 == 1
        longest[has] = np.maximum(longest[has], runway[i])
    players = tuple(f"site{i}" for i in range(n_players))
    return Game(players, GameKind.COST, longest + coalition_sums(extras))


def unanimity_mix_game(n_players: int, rng: np.random.Generator, terms: int = 60) -> Game:
    dividends = np.zeros(1 << n_players)
    carriers = rng.integers(1, 1 << n_players, terms)
    np.add.at(dividends, carriers, rng.uniform(0.0, 10.0, terms))
    values = dividends.copy()
    for i in range(n_players):  # v(S) = sum of dividends of subsets of S (zeta transform)
        view = values.reshape(1 << (n_players - 1 - i), 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    return Game(tuple(f"site{i}" for i in range(n_players)), GameKind.PROFIT, values)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    rng = np.random.default_rng(20240601)
    print("exact Shapley value (vectorised over the 2^n table)")
    for n in (10, 15, 20):
        game = airport_game(n, rng)
        phi, seconds = timed(shapley_value, game)
        assert np.isclose(phi.sum(), game.grand_value)
        print(f"  {n:2d} players  {seconds:8.3f} s")
    print("nucleolus (sequential LPs, fix-by-dual)")
    for family, build in (("airport", airport_game), ("unanimity", unanimity_mix_game)):
        for n in (6, 10, 14):
            game = build(n, rng)
            for backend in ("matrix", "pyomo"):
                result, seconds = timed(nucleolus, game, backend=backend)
                stable = "in core" if in_core(game, result.shares) else "NOT IN CORE"
                print(
                    f"  {family:9s} {n:2d} players  {seconds:8.3f} s  backend={backend:6s} "
                    f"{result.lp_count:2d} LPs  {stable}"
                )


if __name__ == "__main__":
    main()
