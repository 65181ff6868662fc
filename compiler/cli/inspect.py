"""``tinytrain inspect MODEL``: a model's graph, parameter and MAC counts."""
from __future__ import annotations

import argparse
import json

from compiler.cli import model_arg
from compiler.cli.commands import MODEL_HELP, command


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--summary", action="store_true",
                   help="print only the totals, not the node table")
    p.add_argument("--json", action="store_true",
                   help="print the totals and per-node rows as JSON")
    model_arg.add_import_options(p)


@command("inspect", help="print a model's graph, parameter and MAC counts",
         description="Load a model into the compiler IR and print every node (op, output "
                     "shape, attributes, output scale/zero point, parameters, MACs), then "
                     "the totals. MACs count conv and fully-connected multiply-accumulates; "
                     "the backbone figure excludes the classifier (the trailing "
                     "fully-connected layer).",
         arguments=_inspect_args)
def cmd_inspect(args: argparse.Namespace) -> int:
    from compiler.cli.printer import format_graph, node_summary, summary
    g = model_arg.load(args.model, args, allow_float=True)  # a float source: its float graph
    s = summary(g)
    if args.json:
        s["nodes"] = [dict(name=n.name, op=n.op, inputs=n.inputs, output=n.output,
                           shape=list(g.tensors[n.output].shape), attrs=node_summary(n),
                           scale=g.tensors[n.output].scale, zero_point=g.tensors[n.output].zero_point,
                           params=g.param_count(n), macs=g.node_macs(n), source=n.source)
                      for n in g.nodes]
        print(json.dumps(s, indent=2))
        return 0
    if not args.summary:
        print(format_graph(g))
        print()
    print(f"model:            {s['name']} ({s['dtype']}, {len(g.nodes)} nodes)")
    print(f"parameters:       {s['params']:,} (weights + biases)")
    print(f"MACs total:       {s['macs']:,} ({s['macs'] / 1e6:.2f}M)")
    print(f"MACs backbone:    {s['backbone_macs']:,} ({s['backbone_macs'] / 1e6:.2f}M, "
          "excluding the classifier)")
    print(f"MACs classifier:  {s['classifier_macs']:,}")
    print(f"sha256:           {s['sha256']}")
    return 0
