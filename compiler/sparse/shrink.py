"""Smaller plans from a larger one: descend under a tighter budget, one cheap step at a time.

The evolutionary search (:mod:`compiler.sparse.search`) evaluates the memory model on
hundreds of plans; one evaluation of a 128x128 model's training step places the arena a
few dozen times (two-pass choice, fused-block row groups), seconds each. To get the plans
for a few smaller budgets from a plan that is already good at a larger one, :func:`descend`
walks down from it instead, evaluating memory once per candidate move (about a dozen per
step):

- each step evaluates the memory model on every one-step smaller plan (a move). A move
  that loses no predicted gain and saves bytes is taken first (the one saving most);
  else, if some moves fit the budget, it takes the one with the most predicted gain left
  (ties: the smaller plan) and stops there; otherwise it takes the move with the least predicted
  gain lost per byte it saves, counting no more bytes than the budget still needs.
  (Estimating the bytes without the memory model misleads: dropping a few layers' biases
  saves far less arena than their masks suggest, and a greedy walk on estimates gave up
  eight bias layers where one weight ratio step would have fitted.) Moves are: save a
  trained conv's input at ``lowp_bits`` (the arena holds it at that width; its cost
  ``lowp_cost`` points, e.g. what
  ``bench/lowp_saves.py`` measured: within one standard error at 4 bits; at no cost,
  all such saves are one move), lower a layer's channel ratio to the next smaller one
  the analysis measured (or stop training its weights), and train the biases of fewer
  layers (the next smaller measured depth);
- gains come from the plan's contribution analysis (:class:`compiler.sparse.contrib.Analysis`,
  e.g. :func:`analysis_of` a plan file's recorded ``analysis``), as in the search; the
  plan at each budget is the first one on the way down that the memory model says fits.

Two-pass input gradients are chosen per layer by the memory model itself (the smallest
arena, :mod:`compiler.memory.two_pass`), as the build does with ``--two-pass auto``.
A ratio below 1 needs the layer's channel permutation: only layers whose permutation the
starting plan carries (or ratio 1) are used, so every plan on the way builds on the
starting plan's graph.
"""
from __future__ import annotations

from fractions import Fraction

from compiler.ir.graph import Graph
from compiler.sparse import contrib
from compiler.sparse import plan as sparse


def analysis_of(plan: sparse.SparsePlan) -> contrib.Analysis:
    """The contribution analysis a plan file records (``analysis``: head accuracy, bias
    depths, weight configurations measured on top of ``weights_measured_with_bias_layers``)."""
    d = plan.meta.get("analysis")
    if not d or "bias" not in d or "weight" not in d:
        raise sparse.PlanError("the plan records no contribution analysis (its 'analysis' field): "
                               "make it with `python -m compiler plan`")
    weight = {}
    for k, v in d["weight"].items():
        name, r = k.rsplit(" ", 1)
        weight[(name, Fraction(r))] = float(v)
    return contrib.Analysis(float(d["head_accuracy"]), {int(k): float(v) for k, v in d["bias"].items()},
                            weight, int(d.get("weights_measured_with_bias_layers", 0)),
                            n_train=int(d.get("n_train", 0)), n_test=int(d.get("n_test", 0)))


def _copy(p: sparse.SparsePlan, k=None, weights=None, bits=None) -> sparse.SparsePlan:
    meta = {key: v for key, v in p.meta.items() if key != "save_bits"}
    bits = dict(p.meta.get("save_bits") or {}) if bits is None else bits
    weights = dict(p.weights) if weights is None else weights
    bits = {n: b for n, b in bits.items() if n in weights}
    if bits:
        meta["save_bits"] = bits
    return sparse.SparsePlan(p.bias_layers if k is None else k, weights, dict(p.channels), meta)


def gain(an: contrib.Analysis, p: sparse.SparsePlan, lowp_cost: float = 0.0) -> float:
    """Predicted gain (points over head only) of ``p``: bias depth + weight configurations
    (as the search adds them), less ``lowp_cost`` per low-bit save."""
    g = an.bias_gain(p.bias_layers) if p.bias_layers in an.bias or p.bias_layers == 0 else 0.0
    for n, r in p.weights.items():
        if (n, r) in an.weight:
            g += an.weight_gain(n, r)
    return g - lowp_cost * len(p.meta.get("save_bits") or {})


def _conv_input_bytes(g: Graph, name: str) -> int:
    return int(g.tensors[g.node(name).inputs[0]].numel)


def _weight_bytes(g: Graph, name: str, r: Fraction) -> int:
    w = g.node(name).params["weight"]
    co = int(w.shape[0])
    k = max(1, int(co * r))
    return k * (int(w.size) // co) + 4 * k


def moves(g: Graph, an: contrib.Analysis, p: sparse.SparsePlan, lowp_bits: int = 4,
          lowp_cost: float = 0.0) -> list[tuple[float, float, str, sparse.SparsePlan]]:
    """The one-step smaller plans of ``p``: ``(predicted gain lost, estimated bytes saved,
    what, plan)``."""
    out = []
    bits = p.meta.get("save_bits") or {}
    base_gain = gain(an, p, lowp_cost)
    wide = [n for n in sorted(p.weights) if lowp_bits and int(bits.get(n, 8)) > lowp_bits]
    if wide and lowp_cost <= 0:     # free: all in one step (one memory evaluation)
        q = _copy(p, bits={**bits, **{n: lowp_bits for n in wide}})
        out.append((base_gain - gain(an, q, lowp_cost),
                    sum(_conv_input_bytes(g, n) * (8 - lowp_bits) // 8 for n in wide),
                    f"inputs of {', '.join(wide)} saved at {lowp_bits} bits", q))
    for n, r in sorted(p.weights.items()):
        if lowp_bits and lowp_cost > 0 and int(bits.get(n, 8)) > lowp_bits:
            q = _copy(p, bits={**bits, n: lowp_bits})
            saved = _conv_input_bytes(g, n) * (8 - lowp_bits) // 8
            out.append((base_gain - gain(an, q, lowp_cost), saved,
                        f"{n}: input saved at {lowp_bits} bits", q))
        smaller = sorted(rr for (nn, rr) in an.weight if nn == n and rr < r
                         and (rr == 1 or n in p.channels))
        w = dict(p.weights)
        if smaller:
            w[n] = smaller[-1]
            what = f"{n}: weights {r} -> {smaller[-1]}"
            saved = _weight_bytes(g, n, r) - _weight_bytes(g, n, smaller[-1])
        else:
            del w[n]
            what = f"{n}: weights no longer trained"
            saved = _weight_bytes(g, n, r) + _conv_input_bytes(g, n) * int(bits.get(n, 8)) // 8
        q = _copy(p, weights=w)
        out.append((base_gain - gain(an, q, lowp_cost), saved, what, q))
    ks = sorted(k for k in an.bias if k < p.bias_layers)
    if p.bias_layers:
        k = ks[-1] if ks else 0
        body = sparse.body_layers(g)
        dropped = body[len(body) - p.bias_layers:len(body) - k]
        # biases in RAM + about a mask bit per output element of each dropped layer
        saved = sum(4 * int(g.node(n).params["bias"].size) + int(g.tensors[g.node(n).output].numel) // 8
                    for n in dropped if "bias" in g.node(n).params)
        q = _copy(p, k=k)
        out.append((base_gain - gain(an, q, lowp_cost), max(1, saved),
                    f"biases of the last {k} layers (was {p.bias_layers})", q))
    return out


def descend(g: Graph, an: contrib.Analysis, mm: sparse.MemoryModel, plan: sparse.SparsePlan,
            budgets, *, lowp_bits: int = 4, lowp_cost: float = 0.0, log=None, max_steps: int = 40
            ) -> dict[int, tuple[sparse.SparsePlan, dict, list[str]]]:
    """Walk down from ``plan`` (on ``g``, its graph) through ``budgets`` (bytes, largest
    first): ``{budget: (plan, memory, steps taken from the start)}``, the first plan on
    the way that fits each budget. Each step evaluates the memory model on every move
    (:func:`moves`): a move losing no predicted gain is taken first; else the fitting move
    with the most predicted gain ends the walk for that budget; with none fitting, it
    takes the move with the least gain lost per byte saved, counting no more bytes than
    the budget still needs (ties: the smaller loss). Raises
    :class:`compiler.sparse.plan.PlanError` when the head-only plan is reached and a
    budget is still not met."""
    say = log or (lambda s: None)
    out = {}
    cur = plan
    mem = mm(cur)
    steps: list[str] = []
    seen: dict[str, dict] = {}

    def memory(q):
        k = q.key()
        if k not in seen:
            seen[k] = mm(q)
        return seen[k]

    for budget in sorted({int(b) for b in budgets}, reverse=True):
        n = 0
        while mem["total"] > budget:
            cands = moves(g, an, cur, lowp_bits, lowp_cost)
            if not cands or n >= max_steps:
                raise sparse.PlanError(f"{g.name}: no smaller plan fits {budget / 1024:.1f} KB "
                                       f"(stopped at {mem['total'] / 1024:.1f} KB: {cur.describe(g)})")
            need = mem["total"] - budget
            rated = [(lost, mem["total"] - memory(q)["total"], what, q) for lost, _est, what, q in cands]
            free = [c for c in rated if c[0] <= 0 and c[1] > 0]
            fits = [c for c in rated if mem["total"] - c[1] <= budget]
            if free:     # no predicted gain lost: always worth taking first
                lost, saved, what, cur = max(free, key=lambda c: c[1])
            elif fits:
                lost, saved, what, cur = min(fits, key=lambda c: (c[0], -c[1]))
            else:
                lost, saved, what, cur = min(
                    rated, key=lambda c: (max(c[0], 0.0) / min(max(c[1], 1), need), c[0], -c[1]))
            mem = memory(cur)
            steps.append(what)
            n += 1
            say(f"  {what}: predicted gain {gain(an, cur, lowp_cost):+.1f}, "
                f"{mem['total'] / 1024:.1f} KB")
        out[budget] = (cur, mem, list(steps))
    return out


def finish(p: sparse.SparsePlan, g: Graph, an: contrib.Analysis, mem: dict, budget: int,
           steps: list[str], lowp_cost: float = 0.0, parent: str | None = None) -> sparse.SparsePlan:
    """``p`` with its budget, predicted memory and gain recorded (as the search records
    them) and the permutations it does not use dropped."""
    from compiler.sparse.planner import needed_permutations
    q = _copy(p)
    q.channels = needed_permutations(g, q, p.channels)
    keep = {k: v for k, v in p.meta.items()
            if k not in ("budget_bytes", "predicted", "measured", "plan", "save_bits")}
    q.meta = {**keep, **({"save_bits": q.meta["save_bits"]} if "save_bits" in q.meta else {}),
              "budget_bytes": int(budget),
              "predicted": {"ram_bytes": mem["total"], "arena_bytes": mem["arena"],
                            "trained_param_bytes": mem["params"], "stack_bytes": mem["stack"],
                            "history_bytes": mem.get("history", 0),
                            "gain_points": round(gain(an, q, lowp_cost), 2),
                            "head_only_accuracy": round(an.base, 2)},
              "derived": {"from": parent, "steps": steps, "lowp_cost_points": lowp_cost},
              "plan": q.describe(g) + _bits_note(q)}
    return q


def _bits_note(p: sparse.SparsePlan) -> str:
    bits = p.meta.get("save_bits") or {}
    if not bits:
        return ""
    return "; inputs saved at " + ", ".join(f"{b} bits ({n})" for n, b in sorted(bits.items()))
