"""Execution schedule and static arena plan for the forward pass.

1. :func:`schedule` turns an int8 graph into steps, one C call each. Inverted-residual
   blocks ``[expand] -> depthwise -> pointwise2 [-> add]`` (expand = pointwise1, or any
   plain conv feeding the depthwise, such as the first conv) whose intermediate tensors
   are large run *fused*, row by row (``tt_block_s8`` in runtime_c/src/kernels/tt_block_s8.c):
   only a band of ``k`` expanded rows and one depthwise output row exist at a time, so
   the 64x64x48 tensor of mbv2-w0.35 (192 KB) is never materialised.
2. :func:`plan` gives every tensor a lifetime (first step writing it .. last step
   reading it), lets ``add`` and ``flatten`` work in place, and packs tensors and
   per-step scratch into one arena with compile-time offsets (first fit: lowest free
   offset among buffers whose lifetimes overlap; the smallest arena of a few placement
   orders). A fused block or convolution whose input dies with it may write its output
   over that input, trailing the rows still to be read (:mod:`compiler.memory.overlap`;
   an unfused convolution then runs in a few band calls); ``Plan.lags`` holds the pairs
   the placement may use, ``Plan.writes_over_input`` says which steps do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.ir.graph import Graph, Node
from compiler.ir.qmath import hw
from compiler.kernels import forward as KF
from compiler.kernels.sizes import c_sizes
from compiler.memory import native_fit, overlap

ALIGN = 8
FUSE_MIN_BYTES = 16 * 1024


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Step:
    kind: str                      # conv | fc | add | avgpool | flatten | block
    name: str
    nodes: list[Node]
    inputs: list[str]
    output: str
    scratch: int = 0               # bytes of scratch needed during this step
    kernel: str = ""
    block: dict | None = None      # fused block: roles -> nodes, sub-buffer sizes
    band: int = 0                  # conv: output rows per call when written over its input
    dw_map: bool = False           # depthwise: the whole-map layout (KF.dw_map_ok)


@dataclass
class Buffer:
    tensor: str
    size: int
    first: int
    last: int
    offset: int = -1
    alias_of: str | None = None    # shares the bytes of another tensor (in place)


@dataclass
class Plan:
    graph: Graph
    steps: list[Step]
    buffers: dict[str, Buffer]
    scratch_offsets: list[int]
    arena_bytes: int
    live_bytes: list[int] = field(default_factory=list)
    fuse: str = "auto"
    extra_offsets: dict[str, int] = field(default_factory=dict)
    extra: list = field(default_factory=list)
    live_all: list[int] = field(default_factory=list)
    # (input root, output root) -> largest allowed output offset - input offset at which
    # the two may share bytes (a streaming step writing over its dying input)
    lags: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def peak_step(self) -> int:
        return max(range(len(self.steps)), key=lambda i: self.live_bytes[i])

    def offset(self, tensor: str) -> int:
        b = self.buffers[tensor]
        return self.buffers[b.alias_of].offset if b.alias_of else b.offset

    def writes_over_input(self, i: int) -> bool:
        """Step ``i``'s output shares arena bytes with its (dying) input: an unfused conv
        then runs in calls of ``band`` rows (compiler.memory.overlap)."""
        s = self.steps[i]
        src = self.buffers[s.inputs[0]].alias_of or s.inputs[0] if s.inputs else None
        if (src, s.output) not in self.lags:
            return False
        a, b = self.offset(src), self.offset(s.output)
        return a < b + self.buffers[s.output].size and b < a + self.buffers[src].size


def _nbytes(g: Graph, t: str) -> int:
    return g.tensors[t].numel  # int8, batch 1


def _consumers(g: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {t: [] for t in g.tensors}
    for n in g.nodes:
        for t in n.inputs:
            out[t].append(n)
    return out


def _is_pw(n: Node | None, stride1: bool = True) -> bool:
    return (n is not None and n.conv_kind == "pointwise" and KF.is_square(n.attrs)
            and (hw(n.attrs["stride"]) == (1, 1) or not stride1))


def _find_blocks(g: Graph, fuse: str, keep=frozenset()) -> dict[str, dict]:
    """depthwise node name -> {pw1, dw, pw2, add, input, output} for fusable blocks.
    Blocks containing a node of ``keep`` (e.g. on the gradient path) are not fused."""
    if fuse == "none":
        return {}
    producer = {n.output: n for n in g.nodes}
    cons = _consumers(g)
    blocks = {}
    claimed: set[str] = set()
    for dw in g.nodes:
        if not dw.is_depthwise or not KF.is_square(dw.attrs):
            continue
        pw1 = producer.get(dw.inputs[0])  # "expand": pointwise1 or any plain conv
        if not (pw1 is not None and pw1.conv_kind in ("pointwise", "kxk") and KF.is_square(pw1.attrs)
                and len(cons[pw1.output]) == 1
                and pw1.output not in g.outputs and pw1.name not in claimed):
            pw1 = None
        c = cons[dw.output]
        if len(c) != 1 or not _is_pw(c[0]) or dw.output in g.outputs:
            continue
        pw2 = c[0]
        block_in = pw1.inputs[0] if pw1 else dw.inputs[0]
        add = None
        c2 = cons[pw2.output]
        if (len(c2) == 1 and c2[0].op == "add" and block_in in c2[0].inputs
                and pw2.output not in g.outputs and hw(dw.attrs["stride"]) == (1, 1)
                and c2[0].inputs[0] != c2[0].inputs[1]):
            add = c2[0]
        expanded = max(_nbytes(g, pw1.output) if pw1 else 0, _nbytes(g, dw.output))
        if fuse == "auto" and expanded <= FUSE_MIN_BYTES:
            continue
        if any(n is not None and n.name in keep for n in (pw1, dw, pw2, add)):
            continue
        claimed.update(n.name for n in (pw1, dw, pw2, add) if n is not None)
        blocks[dw.name] = {"pw1": pw1, "dw": dw, "pw2": pw2, "add": add, "input": block_in,
                           "output": (add or pw2).output}
    return blocks


def schedule(g: Graph, fuse: str = "auto", keep=frozenset(), tiling=None) -> list[Step]:
    """Steps of the forward pass. ``tiling``: fused block name -> (prep, rows): the block
    prepares its pointwise layers once per call and runs ``rows`` depthwise output rows
    per group (more scratch, fewer instructions: see tt_block.h); default (False, 1).
    Depthwise layer name -> ``"dw_map"``: the whole-map layout (KF.dw_map_ok)."""
    tiling = tiling or {}
    if fuse not in ("auto", "all", "none"):
        raise ValueError(f"fuse must be auto, all or none, not {fuse!r}")
    KF.prefetch(g)
    blocks = _find_blocks(g, fuse, keep)
    parents = [_block_name(b["dw"].name) for b in blocks.values()]
    shared = {p for p in parents if parents.count(p) > 1}
    in_block: dict[str, str] = {}
    for key, b in blocks.items():
        for role in ("pw1", "dw", "pw2", "add"):
            if b[role] is not None:
                in_block[b[role].name] = key
    steps: list[Step] = []
    for n in g.nodes:
        key = in_block.get(n.name)
        if key is not None:
            b = blocks[key]
            if n is not b["dw"]:
                continue  # emitted once, at the depthwise node (all parts are contiguous)
            step = _block_step(g, b, unique=_block_name(key) not in shared)
            if step.name in tiling:
                step = _block_step(g, b, _block_name(key) not in shared, *tiling[step.name])
            steps.append(step)
            continue
        e = KF.emitter_for(n)
        if tiling.get(n.name) == "dw_map":
            steps.append(Step(e.kind, n.name, [n], list(n.inputs), n.output,
                              _c_size(KF.dw_map_scratch_expr(g, n)), e.kernel(n), dw_map=True))
            continue
        steps.append(Step(e.kind, n.name, [n], list(n.inputs), n.output, _scratch(g, n),
                          e.kernel(n)))
    return steps


def _block_name(dw_name: str) -> str:
    """A fused block is named after its depthwise conv's parent module (``blocks.3``)."""
    return dw_name.rsplit(".", 1)[0] if "." in dw_name else dw_name


_MEMO: dict[str, int] | None = None  # C size expression -> value, during one plan() call


def _c_size(expr: str) -> int:
    if _MEMO is None:
        return c_sizes([expr])[0]
    if expr not in _MEMO:
        _MEMO[expr] = c_sizes([expr])[0]
    return _MEMO[expr]


def _scratch(g: Graph, n: Node) -> int:
    """Scratch bytes of the forward kernel of ``n`` (KF.scratch)."""
    e = KF.emitter_for(n).scratch_expr(g, n)
    return _c_size(e) if e else 0


def _prep_bytes(g: Graph, n: Node | None) -> int:
    """Scratch bytes of conv ``n`` prepared once per block call (TT_BLOCK_PREP_BYTES)."""
    return _c_size(KF.prep_expr(g, n)) if n is not None else 0


def _block_step(g: Graph, b: dict, unique: bool = True, prep: bool | str = False,
                rows: int = 1) -> Step:
    """The fused step of block ``b``, named after the depthwise conv's parent module, or
    after the depthwise conv itself when that parent holds several blocks (``unique``
    False: the layers of one ``nn.Sequential``). ``prep``: its pointwise layers are
    prepared once per call, in scratch before the kernels' shared scratch (``"pw2"``:
    only pointwise2, the smaller preparation, where the expand conv's does not fit);
    ``rows``
    depthwise output rows per group (tt_block_band_bytes / tt_block_row_bytes)."""
    dw, pw1, pw2 = b["dw"], b["pw1"], b["pw2"]
    _, h, w, c = g.tensors[dw.inputs[0]].shape
    _, ho, wo, _ = g.tensors[dw.output].shape
    kh = dw.attrs["kernel"][0]
    rows = max(1, min(rows, ho))
    band = _align((kh + (rows - 1) * hw(dw.attrs["stride"])[0]) * w * c) if pw1 else 0
    row = _align(rows * wo * c)
    ks = max([_scratch(g, n) for n in (pw1, dw, pw2) if n is not None])
    nodes = [n for n in (pw1, dw, pw2, b["add"]) if n is not None]
    name = _block_name(dw.name) if unique else dw.name
    # a layer with 4-bit weights is never prepared: its kernel unpacks them per call;
    # prep is True (both pointwise layers) or another truthy value (pointwise2 only)
    p1 = (_prep_bytes(g, pw1) if prep is True and pw1 is not None and not KF.is_packed(pw1)
          else 0)
    p2 = _prep_bytes(g, pw2) if prep and not KF.is_packed(pw2) else 0
    return Step("block", name, nodes, [b["input"]], b["output"],
                band + row + p1 + p2 + _align(ks),
                KF.BLOCK.kernel(), {**b, "band_bytes": band, "row_bytes": row,
                                "prep1": p1, "prep2": p2, "rows": rows,
                                "kernel_scratch": _align(ks)})


def plan(g: Graph, fuse: str = "auto", keep=frozenset(), extend_last: dict | None = None,
         extra: list | None = None) -> Plan:
    """Forward schedule + arena. Training hooks: ``keep`` (nodes that must not be fused),
    ``extend_last`` (tensor -> last step index using it, beyond the forward steps, e.g.
    activations saved for the backward pass), ``extra`` ((name, bytes, first, last)
    buffers: masks, gradients, backward scratch), placed in the same arena; their offsets
    end up in ``Plan.extra_offsets``.

    Fused blocks prepare their pointwise layers once per call and run several rows per
    group (faster) where the extra scratch fits under the peak of the plan without it,
    and depthwise layers on small maps get the whole-map scratch (KF.dw_map_ok) on the
    same terms: the arena never grows for it."""
    global _MEMO
    _MEMO = {}  # sizes are evaluated once per plan (the runtime may change between plans)
    try:
        return _plan_tiled(g, fuse, keep, extend_last, extra)
    finally:
        _MEMO = None


def _plan_tiled(g: Graph, fuse: str, keep, extend_last: dict | None,
                extra: list | None) -> Plan:
    base = _plan(g, fuse, keep, extend_last, extra, {})
    tiling = {}
    for i, s in enumerate(base.steps):
        if s.kind != "block":
            continue
        room = base.arena_bytes - base.live_bytes[i]
        for prep, rows in BLOCK_TILINGS:
            t = _block_step(g, s.block, True, prep, rows)
            if t.scratch - s.scratch <= room:
                if (prep, rows) != (False, 1):
                    tiling[s.name] = (prep, rows)
                break
    for cap in (8, 4, 2, 1):  # packing may still grow the arena: fewer rows then
        cand = {k: (prep, min(rows, cap)) for k, (prep, rows) in tiling.items()
                if prep or min(rows, cap) > 1}
        if cand:
            p = _plan(g, fuse, keep, extend_last, extra, cand)
            if p.arena_bytes <= base.arena_bytes:
                p, cand = _raise_rows(g, fuse, keep, extend_last, extra, base.arena_bytes, p,
                                      cand, tiling, cap)
                p, cand = _prep_pw2(g, fuse, keep, extend_last, extra, base.arena_bytes, p,
                                    cand)
                return _dw_maps(g, fuse, keep, extend_last, extra, base.arena_bytes, p, cand)
    p, cand = _prep_pw2(g, fuse, keep, extend_last, extra, base.arena_bytes, base, {})
    return _dw_maps(g, fuse, keep, extend_last, extra, base.arena_bytes, p, cand)


def _dw_maps(g: Graph, fuse: str, keep, extend_last: dict | None, extra: list | None,
             arena: int, p: Plan, cand: dict) -> Plan:
    """The depthwise layers that can run in the whole-map layout (KF.dw_map_ok) get its
    scratch (larger than the ring's for 3x3) where the arena stays within ``arena``: all
    at once when that fits, else layer by layer (in step order)."""
    names = [s.name for s in p.steps if s.kind == "conv" and KF.dw_map_ok(g, s.nodes[0])]
    if not names:
        return p
    q = _plan(g, fuse, keep, extend_last, extra, {**cand, **{n: "dw_map" for n in names}})
    if q.arena_bytes <= arena:
        return q
    for name in names:
        trial = {**cand, name: "dw_map"}
        q = _plan(g, fuse, keep, extend_last, extra, trial)
        if q.arena_bytes <= arena:
            p, cand = q, trial
    return p


def _prep_pw2(g: Graph, fuse: str, keep, extend_last: dict | None, extra: list | None,
              arena: int, p: Plan, cand: dict) -> tuple[Plan, dict]:
    """Blocks left without any tiling (e.g. the first block, at the arena's peak, where
    the expand conv's preparation does not fit) still prepare their pointwise2 where the
    arena stays within ``arena`` (block by block, in step order)."""
    for s in list(p.steps):
        if s.kind != "block" or s.name in cand or s.block["pw1"] is None:
            continue
        trial = {**cand, s.name: ("pw2", 1)}
        q = _plan(g, fuse, keep, extend_last, extra, trial)
        if q.arena_bytes <= arena:
            p, cand = q, trial
    return p, cand


def _raise_rows(g: Graph, fuse: str, keep, extend_last: dict | None, extra: list | None,
                arena: int, p: Plan, cand: dict, tiling: dict, cap: int) -> tuple[Plan, dict]:
    """The rows cap is common to all blocks: raise it block by block (in step order)
    where the arena still stays within ``arena`` (e.g. mcunet-5fps: 1 row per group for
    all, then 4 rows for blocks.2..4 and 2 for blocks.5, same arena)."""
    for name, (prep, rows) in tiling.items():
        for r in (8, 4, 2):
            if r <= cap or r > rows:
                continue
            trial = {**cand, name: (prep, r)}
            q = _plan(g, fuse, keep, extend_last, extra, trial)
            if q.arena_bytes <= arena:
                p, cand = q, trial
                break
    return p, cand


# (prep, rows) tried for each fused block, best first
BLOCK_TILINGS = [(True, 8), (True, 4), (True, 2), (True, 1), (False, 4), (False, 2), (False, 1)]


def _plan(g: Graph, fuse: str, keep, extend_last: dict | None, extra: list | None,
          tiling: dict) -> Plan:
    steps = schedule(g, fuse, keep, tiling)
    nsteps = len(steps)
    bufs: dict[str, Buffer] = {}
    for t in g.inputs:
        bufs[t] = Buffer(t, _nbytes(g, t), 0, 0)
    for i, s in enumerate(steps):
        bufs[s.output] = Buffer(s.output, _nbytes(g, s.output), i, i)
        for t in s.inputs:
            bufs[t].last = max(bufs[t].last, i)
    for t in g.outputs:
        bufs[t].last = nsteps - 1
    for t, last in (extend_last or {}).items():
        bufs[t].last = max(bufs[t].last, last)
    # in place (the step's emitter says when): flatten always; add when an operand dies here
    for i, s in enumerate(steps):
        how = KF.BY_KIND[s.kind].in_place
        if how == "always" or (how == "operand_dies" and any(
                bufs[t].last == i and t not in g.inputs for t in s.inputs)):
            src = s.inputs[0] if how == "always" else next(
                t for t in s.inputs if bufs[t].last == i and t not in g.inputs)
            root = bufs[src].alias_of or src
            bufs[s.output].alias_of = root
            bufs[root].last = max(bufs[root].last, bufs[s.output].last)
    # propagate lifetimes of aliases to their roots (aliases may chain)
    for b in bufs.values():
        if b.alias_of:
            r = bufs[b.alias_of]
            r.last = max(r.last, b.last)
    lags = _lags(g, steps, bufs)
    items = [(b.tensor, b.size, b.first, b.last) for b in bufs.values() if not b.alias_of]
    items += [(f"#scratch{i}", s.scratch, i, i) for i, s in enumerate(steps) if s.scratch]
    items += [(name, size, first, last) for name, size, first, last in (extra or []) if size]
    offsets, lags = _place(items, lags, {s.output for s in steps if s.kind == "block"})
    for t, b in bufs.items():
        if not b.alias_of:
            b.offset = offsets[t]
    scratch_offsets = [offsets.get(f"#scratch{i}", 0) for i in range(nsteps)]
    placed = [(offsets[name], size, first, last) for name, size, first, last in items]
    arena = _align(max((o + sz for o, sz, _, _ in placed), default=0))
    horizon = max([nsteps] + [last + 1 for _, _, _, last in (extra or [])])
    at: list[list[tuple[int, int]]] = [[] for _ in range(horizon)]   # spans live at each step
    for o, sz, f, l in placed:
        for i in range(max(f, 0), min(l, horizon - 1) + 1):
            at[i].append((o, sz))
    live = [_union_bytes(spans) for spans in at]
    pl = Plan(g, steps, bufs, scratch_offsets, arena, live[:nsteps], fuse)
    pl.extra_offsets = {name: offsets[name] for name, size, _, _ in (extra or []) if size}
    pl.extra = list(extra or [])
    pl.live_all = live
    pl.lags = lags
    return pl


def _lags(g: Graph, steps: list[Step], bufs: dict[str, Buffer]) -> dict[tuple[str, str], int]:
    """(input root, output root) -> lag for every fused block and unfused convolution
    whose input's storage dies at that step (not a graph output, not kept for later
    steps or the backward pass)."""
    lags = {}
    for i, s in enumerate(steps):
        if s.kind == "block":
            lag = overlap.block_lag(g, s.block)
        elif s.kind == "conv" and s.nodes[0].conv_kind in ("pointwise", "depthwise", "kxk"):
            s.band = overlap.conv_band(g.tensors[s.output].shape[1])
            lag = overlap.conv_lag(g, s.nodes[0], s.band)
        else:
            continue
        src = bufs[s.inputs[0]].alias_of or s.inputs[0]
        dst = s.output
        if bufs[dst].alias_of or bufs[src].last != i or src in g.outputs:
            continue
        lags[(src, dst)] = bufs[dst].size if lag is None else max(lag, -bufs[dst].size)
    return lags


def _chains(items: list[tuple[str, int, int, int]], lags: dict[tuple[str, str], int]
            ) -> list[list[tuple[str, int, int, int, int]]]:
    """The buffers as placement units: a chain input -> output -> output ... of ``lags``
    pairs is one rigid unit (each output at its input's offset + its lag, rounded down to
    ALIGN), every other buffer a unit of its own. Unit = [(name, rel, size, first, last)]
    with the lowest ``rel`` 0."""
    by_name = {it[0]: it for it in items}
    nxt = {src: (dst, lag) for (src, dst), lag in lags.items()}
    dsts = {dst for dst, _ in nxt.values()}
    heads = set(nxt) - dsts
    units, seen = [], set()
    for name, size, first, last in items:
        if name in seen:
            continue
        if name in heads:
            unit, rel, cur = [], 0, name
            while True:
                unit.append((cur, rel) + by_name[cur][1:])
                seen.add(cur)
                if cur not in nxt:
                    break
                cur, lag = nxt[cur]
                rel += lag // ALIGN * ALIGN
            low = min(r for _, r, *_ in unit)
            units.append([(n, r - low, sz, f, l) for n, r, sz, f, l in unit])
        elif name not in dsts:
            seen.add(name)
            units.append([(name, 0, size, first, last)])
    return units


def _unit_key(u) -> tuple[int, int, int]:
    """(largest size, first step, bytes x steps) of a placement unit: what orders use."""
    if len(u) == 1:
        _, _, size, first, last = u[0]
        return size, first, size * (last - first + 1)
    return (max(p[2] for p in u), min(p[3] for p in u), sum(p[2] * (p[4] - p[3] + 1) for p in u))


#: unit orders the placement tries, on :func:`_unit_key` (biggest first; longest-lived
#: first; earliest first)
_ORDERS = (
    lambda k: (-k[0], k[1]),
    lambda k: (-k[2], k[1]),
    lambda k: (k[1], -k[0]),
)


class _UnitSet:
    """The placement units of one set of chains, with their order keys and (for the
    native placer) their flattened arrays, built once for every order and loose set."""

    def __init__(self, items, chains):
        self.units = _chains(items, chains)
        keys = [_unit_key(u) for u in self.units]
        idx = range(len(keys))
        self.perms = [sorted(idx, key=lambda i, o=o: o(keys[i])) for o in _ORDERS]
        self.native = native_fit.Units(self.units) if native_fit.available() else None

    def place(self, order: int, loose: dict) -> tuple[int, object]:
        """(arena, placement) in order ``order`` (an index into :data:`_ORDERS`)."""
        perm = self.perms[order]
        if self.native is not None:
            res = self.native.place(perm, loose, ALIGN)
            if res is not None:
                return res
        offsets = _first_fit_py([self.units[i] for i in perm], loose)
        return max((offsets[p[0]] + p[2] for u in self.units for p in u), default=0), offsets

    def offsets(self, placement) -> dict[str, int]:
        return placement if isinstance(placement, dict) else self.native.offsets(placement)


def _place(items: list[tuple[str, int, int, int]], lags: dict[tuple[str, str], int],
           block_outputs=frozenset()) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Offsets for (name, size, first, last) buffers, and the ``lags`` pairs they may use:
    the smallest arena among first-fit placements in a few unit orders (:data:`_ORDERS`),
    with every ``lags`` chain rigid, with each pair free to overlap when its second
    buffer is placed (both: all pairs, or only those of fused blocks, outputs
    ``block_outputs``), without any overlap, and (greedily) with single chain links
    dropped."""
    blocks = {k: v for k, v in lags.items() if k[1] in block_outputs}
    sets: dict = {}   # the placement units of each set of chains, built once for every order

    def fit(chains, loose, order):
        key = tuple(sorted(chains.items()))
        if key not in sets:
            sets[key] = _UnitSet(items, chains)
        arena, placement = sets[key].place(order, loose)
        return arena, (sets[key], placement)
    no_loose: dict = {}
    best = None
    for order in range(len(_ORDERS)):
        # the same arena: rather no unfused conv in bands (calls of a few rows cost more)
        for chains, loose in ((blocks, no_loose), (no_loose, blocks), (no_loose, no_loose),
                              (lags, no_loose), (no_loose, lags)):
            arena, placed = fit(chains, loose, order)
            if best is None or arena < best[0]:
                best = (arena, placed, {**chains, **loose}, chains)
    chains = dict(best[3])
    for pair in list(chains):
        trial = {k: v for k, v in chains.items() if k != pair}
        for order in range(len(_ORDERS)):
            arena, placed = fit(trial, no_loose, order)
            if arena < best[0]:
                best, chains = (arena, placed, trial, trial), trial
    unit_set, placement = best[1]
    return unit_set.offsets(placement), best[2]


def _first_fit(items, chains, loose, order) -> dict[str, int]:
    """Units (:func:`_chains` of ``chains``) in ``order`` (one of :data:`_ORDERS`), each
    at the lowest aligned offset where none of its buffers shares a byte with a placed
    buffer whose lifetime overlaps its own, except as a ``loose`` lag allows (output -
    input <= lag): one placement of :func:`_place`'s search (native placer when
    available, else :func:`_first_fit_py`; the same offsets)."""
    units = _UnitSet(items, chains)
    return units.offsets(units.place(_ORDERS.index(order), loose)[1])


def _first_fit_py(units, loose) -> dict[str, int]:
    """:func:`_first_fit` of ``units`` already in placement order, in Python."""
    placed: list[tuple[str, int, int, int, int]] = []  # name, offset, size, first, last
    offsets: dict[str, int] = {}
    for unit in units:
        forbidden = []  # open intervals (lo, hi) of base offsets the unit may not take
        for name, rel, size, first, last in unit:
            for other, o, sz, f, l in placed:
                if l < first or f > last:
                    continue
                lo, hi = o - size, o + sz
                if (other, name) in loose:     # name: the output over its input other
                    lo = max(lo, o + loose[(other, name)])
                elif (name, other) in loose:   # name: the input under its output other
                    hi = min(hi, o - loose[(name, other)])
                if lo < hi:
                    forbidden.append((lo - rel, hi - rel))
        off = 0
        for lo, hi in sorted(forbidden):
            if off <= lo:
                break
            if off < hi:
                off = _align(hi)
        for name, rel, size, first, last in unit:
            offsets[name] = off + rel
            placed.append((name, off + rel, size, first, last))
    return offsets


def _union_bytes(spans: list[tuple[int, int]]) -> int:
    """Bytes covered by the (offset, size) spans (overlapping spans count once)."""
    total, end = 0, 0
    for o, sz in sorted(spans):
        if o + sz > end:
            total += o + sz - max(o, end)
            end = o + sz
    return total


def table(p: Plan) -> list[dict]:
    """Per-step memory rows for the report (bytes)."""
    rows = []
    peak = p.peak_step
    for i, s in enumerate(p.steps):
        out = p.graph.tensors[s.output]
        rows.append({"step": i, "name": s.name, "kernel": s.kernel,
                     "output_shape": list(out.shape[1:]), "output_bytes": out.numel,
                     "scratch_bytes": s.scratch, "live_bytes": p.live_bytes[i],
                     "peak": i == peak})
    return rows


def verify(p: Plan) -> None:
    """Check the plan's invariants (raises AssertionError): every buffer inside the
    arena, and no two buffers whose lifetimes overlap share a byte."""
    items = [(t, p.offset(t), b.size, b.first, b.last) for t, b in p.buffers.items()
             if not b.alias_of]
    items += [(f"#scratch{i}", p.scratch_offsets[i], s.scratch, i, i)
              for i, s in enumerate(p.steps) if s.scratch]
    items += [(n, p.extra_offsets[n], sz, f, l) for n, sz, f, l in p.extra if sz]
    for name, off, size, _, _ in items:
        assert off >= 0 and off + size <= p.arena_bytes, (name, off, size, p.arena_bytes)
    for i, (a, oa, sa, fa, la) in enumerate(items):
        for b, ob, sb, fb, lb in items[i + 1:]:
            if la < fb or lb < fa or sa == 0 or sb == 0:
                continue
            if (a, b) in p.lags or (b, a) in p.lags:
                lag = p.lags.get((a, b), p.lags.get((b, a)))
                dst_minus_src = ob - oa if (a, b) in p.lags else oa - ob
                assert dst_minus_src <= lag or oa + sa <= ob or ob + sb <= oa, \
                    f"{a} at {oa} and {b} at {ob} overlap beyond the lag {lag}"
                continue
            assert oa + sa <= ob or ob + sb <= oa, f"{a} [{oa},{oa + sa}) overlaps {b} [{ob},{ob + sb})"
