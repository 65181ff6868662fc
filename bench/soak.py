"""Soak: a long stream to a learning board with checkpoints and forced resets. Streams
N labelled MNIST digits (host/stream.py, the dataset reshuffled as often as needed) to
the device app of a small CNN with autosave every 500 trained samples, reboots the board
behind its open serial line twice along the way (host build: SIGUSR1; QEMU: the emulator
is killed and booted again on the same flash file), and reports samples sent, results
received, lost (must be 0), resumes, and whether the final weights equal the reference
replay of the same stream uninterrupted. Writes bench/results.json (section "soak").

    .venv/bin/python bench/soak.py                         # host build, 10,000 samples
    .venv/bin/python bench/soak.py --board qemu --samples 1500
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import specgen

from compiler.autodiff import device_replay
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.target import firmware
from host import protocol as P
from host import stream

CFG = dict(lr=0.005, seed=3)
HW = 10


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", choices=("host", "qemu"), default="host")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--autosave", type=int, default=500)
    ap.add_argument("--resets", type=int, default=2)
    ap.add_argument("--history", type=int, default=4)
    a = ap.parse_args(argv)
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="soak-", dir=REPO / "build"))
    g = specgen.random_graph(4, hw=HW, n_blocks=2, classes=10)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    board = "host" if a.board == "host" else "qemu-mps2-an500"
    rep = firmware.build(copy.deepcopy(g), board, work / "fw", program=prog, config=tr.TrainConfig(**CFG),
                         app=firmware.DEVICE_APP, defines={"TT_HISTORY_MAX": a.history}, quiet=True)
    repeat = -(-a.samples // 5000)
    args = ["--dataset", "mnist", "--size", str(HW), "--gray", "--limit", str(a.samples),
            "--repeat", str(repeat), "--history", str(a.history), "--autosave", str(a.autosave),
            "--no-progress", "--timeout", "10", "--out", str(work / "stream"),
            "--download", str(work / "w.bin")]
    at = [int(a.samples * (k + 1) / (a.resets + 1)) for k in range(a.resets)]
    print(f"soak: {a.samples} samples to the {board} board, autosave every {a.autosave}, "
          f"resets at about samples {at}")
    status = _stream(rep["elf"], a.board, args, at, work)
    rows = list(csv.DictReader(open(work / "stream" / "stream.csv")))
    summary = json.loads((work / "stream" / "summary.json").read_text())["passes"]["adapting"]
    sent = len(rows)
    final = {int(r["index"]) for r in rows}
    lost = a.samples - len(final)
    resumes = summary["resumes"]
    print(f"replaying {a.samples} samples on the reference...", flush=True)
    same = _replay_equal(g, prog, rep, args, (work / "w.bin").read_bytes(), a.history)
    res = {"board": board, "samples": a.samples, "sent": sent, "results": len(rows), "lost": lost,
           "resumes": len(resumes), "resent": sum(r["at"] - r["from"] for r in resumes),
           "autosave": a.autosave, "accuracy": summary["accuracy"], "stream_status": status,
           "final_weights_equal_replay": same, "seconds": round(time.time() - t0)}
    print(f"sent {sent}, results {len(rows)}, lost {lost}, resumes {len(resumes)} "
          f"({res['resent']} samples re-sent), accuracy {summary['accuracy']:.1f}%, final weights "
          f"{'equal' if same else 'DIFFER from'} the reference replay; {res['seconds']}s")
    path = REPO / "bench" / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("soak", {})[board] = res
    path.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if (status == 0 and lost == 0 and same) else 1


def _stream(exe, kind, args, at, work) -> int:
    from compiler.target import runner
    csv_path = work / "stream" / "stream.csv"

    def rows():
        try:
            return len(csv_path.read_text().splitlines())
        except FileNotFoundError:
            return 0

    if kind == "host":
        with runner.HostSerial(exe, timeout=7200, flash=work / "flash.bin") as h:
            def resets():
                for n in at:
                    while rows() < n:
                        time.sleep(0.02)
                    print(f"  reset: rebooting the board at about sample {rows()}", flush=True)
                    os.kill(h._p.pid, signal.SIGUSR1)
            t = threading.Thread(target=resets, daemon=True)
            t.start()
            status = stream.main(args + ["--port", h.url])
            import serial
            port = serial.serial_for_url(h.url, timeout=5)
            P.Client(port, timeout=5).exit(0)
            port.close()
        return status

    def kills():
        for n in at:
            while rows() < n:
                time.sleep(0.05)
            for pid in os.listdir("/proc"):
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read()
                except OSError:
                    continue
                if b"qemu-system-arm" in cmd and str(exe).encode() in cmd:
                    print(f"  reset: killing the emulated board at about sample {rows()}", flush=True)
                    os.kill(int(pid), signal.SIGKILL)
    t = threading.Thread(target=kills, daemon=True)
    t.start()
    return stream.main(args + ["--boot", f"qemu:{exe}", "--flash", str(work / "flash.bin")])


def _replay_equal(g, prog, rep, args, blob, history) -> bool:
    a = stream.parse_args(args + ["--port", "unused"])
    ds = stream.load_dataset(a)
    info = SimpleNamespace(num_classes=10, in_c=3, in_h=HW, in_w=HW, max_payload=12296)
    plan = stream.make_plan(a, ds, info)
    seen = [P.resize_u8(plan.image(i), HW, HW, 3, mode=P.RESIZE_BILINEAR) for i in plan.order]
    labels = [int(plan.ds.y[i]) for i in plan.order]
    g = copy.deepcopy(g)
    device_replay.replay(g, prog, tr.TrainState(tr.TrainConfig(**CFG)), seen, labels,
                         [False] * len(seen), device_replay.DeviceSettings(history, 1, 1))
    got = firmware.split_trained(g, rep, blob)
    return all(np.array_equal(v, g.node(n).params[p]) for (n, p), v in got.items())


if __name__ == "__main__":
    sys.exit(main())
