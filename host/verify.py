"""``host.stream --verify BUILD_DIR``: replay what the board did on the numpy reference and
compare, for any training firmware and model.

The build folder of a training firmware (``python -m compiler build MODEL --plan PLAN``)
holds the graph as compiled, its trainable set and training configuration
(compiler.target.firmware.save_training). The last adapting pass of the stream is
replayed from the compiled-in weights with the device's own settings (GET), on the
samples exactly as the device saw them (the host's twin of its resize); the predictions
and the trained arrays downloaded after the pass must be identical.
"""
from __future__ import annotations

import time

from host import protocol as P


class VerifyError(Exception):
    pass


def settings_from_device(get) -> dict:
    """The device's training settings (None: a key the firmware does not report); the
    range functions (``range``, ``loss_range``) only when it reports them (else the
    build's are replayed)."""
    keys = ("history", "epochs", "train_every", "enabled", "lr", "lr_body", "bits", "rounding", "seed")
    out = {k: get(k) for k in keys}
    # firmware without augmentation does not know these keys: it never augments
    out["augment"] = get("augment") or 0
    out["augment_shift"] = get("augment_shift") or 0
    for k in ("range", "loss_range"):
        v = get(k)
        if v is not None:
            out[k] = v
    return out


def replay_pass(build_dir, plan, info, res, dev_settings: dict, resize: str, log) -> tuple:
    """(graph after the replay, report, replay) of the pass ``res`` of ``plan``."""
    from compiler.autodiff import device_replay
    from compiler.autodiff import trainer as tr
    from compiler.target import firmware
    g, prog, cfg, rep = firmware.load_training(build_dir)
    if rep.get("sha256") != info.model_hash:
        raise VerifyError(f"{build_dir} was built for model {str(rep.get('sha256'))[:16]}..., the "
                          f"board runs {info.model_hash[:16]}...")
    s = dev_settings
    rounding = {0: "stochastic", 1: "nearest", 2: "truncate"}.get(s["rounding"], cfg.rounding)
    lr_body = 0.0 if res.mode == "head" else s["lr_body"]
    cfg = tr.TrainConfig(lr=s["lr"], bits=s["bits"], range_mode=s.get("range", cfg.range_mode),
                         rounding=rounding, qas=cfg.qas, seed=s["seed"] & 0xFFFFFFFF,
                         loss_range_mode=s.get("loss_range", cfg.loss_range_mode), lr_body=lr_body)
    mode = P.RESIZE_BILINEAR if resize == "bilinear" else P.RESIZE_NEAREST
    order = plan.order[:res.n]
    imgs = [P.resize_u8(plan.image(i), info.in_h, info.in_w, info.in_c, mode=mode) for i in order]
    labels = [int(plan.ds.y[i]) for i in order]
    settings = device_replay.DeviceSettings(s["history"], s["epochs"], s["train_every"],
                                            bool(s["enabled"]), bool(s.get("augment")),
                                            s.get("augment_shift") or 0)
    log.info(f"verify: replaying {len(imgs)} samples of the {res.mode} pass on the reference...")
    t0 = time.monotonic()
    sim = device_replay.replay(g, prog, tr.TrainState(cfg), imgs, labels, settings=settings)
    log.info(f"verify: replayed in {time.monotonic() - t0:.0f}s")
    return g, rep, sim


def compare(g, rep, sim, preds: list, blob: bytes) -> tuple[bool, str]:
    from compiler.target import firmware
    n_same = sum(int(a == b) for a, b in zip(preds, sim.preds))
    got = firmware.split_trained(g, rep, blob)
    import numpy as np
    bad = [f"{n}.{p}" for (n, p), v in got.items() if not np.array_equal(v, g.node(n).params[p])]
    ok = n_same == len(preds) == len(sim.preds) and not bad
    line = (f"predictions {'identical' if n_same == len(preds) else 'DIFFER'} ({n_same}/{len(preds)}); "
            + (f"trained arrays identical ({len(got)} arrays, {len(blob):,} bytes)" if not bad
               else f"trained arrays DIFFER: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"))
    return ok, line
