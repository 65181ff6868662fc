"""Plan search: the sparse-update plan with the largest predicted gain that fits a budget.

Predicted gain of a plan = gain of its bias depth + the gains of each (layer, ratio) it
trains (:class:`compiler.sparse.contrib.Analysis`; additive, as in the MCUNetV3 paper). The
constraint is the compiler's own memory model (:class:`compiler.sparse.plan.MemoryModel`:
arena + trained parameters + stack + runtime reserve), which is not additive (the peak
of one arena), so the search evaluates it on whole plans, memoised.

:func:`search` = a greedy start (best bias depth, then repeatedly the single upgrade with
the largest gain that still fits) followed by an evolutionary search (mutation of bias
depth and per-layer ratios, uniform crossover, elitist selection) seeded with it; memory
is only evaluated for a child whose gain would enter the population; a generation's
children that could enter are evaluated up front, in ``jobs`` processes
(:func:`compiler.sparse.contrib.memory_models`). Deterministic for a given ``seed``, the
same for any number of jobs. :func:`exhaustive` enumerates every plan (small problems and tests).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from fractions import Fraction

from compiler.sparse import plan as sparse
from compiler.sparse.contrib import Analysis, memory_models


class NoPlanError(sparse.PlanError):
    """Not even the head-only plan fits the budget."""


@dataclass
class Result:
    plan: sparse.SparsePlan
    gain: float
    memory: dict
    evaluated: int          # memory-model evaluations
    ranked: list = field(default_factory=list)   # [(plan, predicted gain)] that fit, best first


class _Space:
    """Genome = (index of the bias depth, per layer: index of its ratio, 0 = frozen). Only
    weight options whose gain reaches ``min_gain`` are in the space."""

    def __init__(self, an: Analysis, min_gain: float = 0.0):
        self.an = an
        self.ks = [0] + sorted(an.bias)
        layers: dict[str, list[Fraction]] = {}
        for (name, r) in an.weight:
            if an.weight_gain(name, r) >= min_gain and an.weight_gain(name, r) > 0:
                layers.setdefault(name, []).append(r)
        self.layers = sorted(layers)
        self.opts = {n: [None] + sorted(layers[n]) for n in self.layers}

    def plan(self, genome: tuple) -> sparse.SparsePlan:
        k = self.ks[genome[0]]
        w = {n: self.opts[n][i] for n, i in zip(self.layers, genome[1:]) if i}
        return sparse.SparsePlan(k, w)

    def gain(self, genome: tuple) -> float:
        g = self.an.bias_gain(self.ks[genome[0]])
        for n, i in zip(self.layers, genome[1:]):
            if i:
                g += self.an.weight_gain(n, self.opts[n][i])
        return g


def _fits(mm: sparse.MemoryModel, plan: sparse.SparsePlan, budget: int) -> bool:
    return mm.total(plan) <= budget


def greedy(sp: "_Space", mm: sparse.MemoryModel, budget: int) -> tuple:
    order = sorted(range(len(sp.ks)), key=lambda i: -sp.an.bias_gain(sp.ks[i]))
    genome = [0] * (1 + len(sp.layers))
    for i in order:
        if _fits(mm, sp.plan((i,) + tuple(genome[1:])), budget):
            genome[0] = i
            break
    while True:
        base = sp.gain(tuple(genome))
        moves = []
        for j, n in enumerate(sp.layers, start=1):
            for i in range(genome[j] + 1, len(sp.opts[n])):
                cand = list(genome)
                cand[j] = i
                d = sp.gain(tuple(cand)) - base
                if d > 0:
                    moves.append((d, j, i))
        moves.sort(key=lambda m: -m[0])
        for d, j, i in moves:
            cand = list(genome)
            cand[j] = i
            if _fits(mm, sp.plan(tuple(cand)), budget):
                genome = cand
                break
        else:
            return tuple(genome)


def search(an: Analysis, mm: sparse.MemoryModel, budget: int, *, generations: int = 30,
           population: int = 24, seed: int = 0, min_gain: float = 0.0,
           progress: bool = False, jobs: int | None = 1) -> Result:
    sp = _Space(an, min_gain)
    rng = random.Random(seed)
    head_mem = mm.total(sparse.SparsePlan(0))
    if head_mem > budget:
        raise NoPlanError(f"even training only the classifier needs {head_mem / 1024:.1f} KB, "
                          f"over the budget of {budget / 1024:.1f} KB")
    start = greedy(sp, mm, budget)
    pop: dict[tuple, float] = {start: sp.gain(start)}
    head_only = tuple([0] * (1 + len(sp.layers)))
    pop[head_only] = 0.0

    def mutate(gn: tuple) -> tuple:
        gn = list(gn)
        if rng.random() < 0.5:
            gn[0] = max(0, min(len(sp.ks) - 1, gn[0] + rng.choice((-2, -1, 1, 2))))
        for _ in range(rng.choice((1, 1, 2, 3))):
            if not sp.layers:
                break
            j = rng.randrange(len(sp.layers)) + 1
            gn[j] = rng.randrange(len(sp.opts[sp.layers[j - 1]]))
        return tuple(gn)

    def cross(a: tuple, b: tuple) -> tuple:
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=generations, desc="plan search", unit="gen", dynamic_ncols=True)
    for _ in range(generations):
        parents = list(pop)
        children = []
        for _ in range(population):
            if len(parents) > 1 and rng.random() < 0.5:
                a, b = rng.sample(parents, 2)
                children.append(mutate(cross(a, b)) if rng.random() < 0.5 else cross(a, b))
            else:
                children.append(mutate(rng.choice(parents)))
        # the children whose gain beats the population's worst now: a superset of those the
        # loop below evaluates (the worst only rises), whatever the number of jobs
        worst = min(pop.values()) if len(pop) >= population else float("-inf")
        memory_models(mm, [sp.plan(c) for c in dict.fromkeys(children)
                           if c not in pop and sp.gain(c) > worst], jobs)
        for c in children:
            if c in pop:
                continue
            gain = sp.gain(c)
            worst = min(pop.values()) if len(pop) >= population else float("-inf")
            if gain <= worst:
                continue
            if not _fits(mm, sp.plan(c), budget):
                continue
            pop[c] = gain
            if len(pop) > population:
                del pop[min(pop, key=lambda x: (pop[x], -mm.total(sp.plan(x))))]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    order = sorted(pop, key=lambda x: (-round(pop[x], 9), mm.total(sp.plan(x))))
    best = order[0]
    plan = sp.plan(best)
    return Result(plan, pop[best], mm(plan), len(mm.cache),
                  [(sp.plan(x), pop[x]) for x in order])


def exhaustive(an: Analysis, mm: sparse.MemoryModel, budget: int,
               min_gain: float = 0.0) -> Result:
    """Every plan of the analysed options; the best that fits (ties: less memory)."""
    sp = _Space(an, min_gain)
    best, best_key = None, None
    ranges = [range(len(sp.ks))] + [range(len(sp.opts[n])) for n in sp.layers]
    for gn in itertools.product(*ranges):
        plan = sp.plan(gn)
        m = mm.total(plan)
        if m > budget:
            continue
        key = (round(sp.gain(gn), 9), -m)
        if best_key is None or key > best_key:
            best, best_key = gn, key
    plan = sp.plan(best)
    return Result(plan, sp.gain(best), mm(plan), len(mm.cache))
