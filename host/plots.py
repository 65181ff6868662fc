"""Plots of a stream's prequential accuracy (matplotlib, Agg canvas: no display needed,
no global backend switch, safe in tests and on headless machines)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

STYLE = {"frozen": ("frozen model (no training)", "tab:gray"),
         "adapting": ("on-device training", "tab:blue"),
         "head": ("head only (the classifier learns)", "tab:orange"),
         "plan": ("sparse-update plan", "tab:green")}


def running_accuracy(correct) -> np.ndarray:
    """Cumulative accuracy after each sample, in percent."""
    c = np.asarray(correct, np.float64)
    return 100.0 * np.cumsum(c) / np.arange(1, len(c) + 1) if len(c) else c


def window_accuracy(correct, window: int) -> np.ndarray:
    """Accuracy over the last ``window`` samples (fewer at the start), in percent."""
    c = np.asarray(correct, np.float64)
    if not len(c):
        return c
    s = np.concatenate([[0.0], np.cumsum(c)])
    i = np.arange(1, len(c) + 1)
    lo = np.maximum(0, i - window)
    return 100.0 * (s[i] - s[lo]) / (i - lo)


def plot_accuracy(curves: dict, path, title: str = "Prequential accuracy",
                  subtitle: str = "", window: int | None = None) -> Path:
    """Write a PNG of running accuracy over samples.

    ``curves``: mode -> sequence of 0/1 (prediction made before training was correct),
    modes ``frozen`` / ``adapting`` get fixed labels and colours, others are drawn too.
    A thin line shows the accuracy over the last ``window`` samples (default: about a
    tenth of the stream, at least 10).
    """
    path = Path(path)
    fig = Figure(figsize=(8, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    n_max = max((len(v) for v in curves.values()), default=0)
    win = window or max(10, n_max // 10)
    for mode, correct in curves.items():
        c = np.asarray(correct, np.float64)
        if not len(c):
            continue
        label, color = STYLE.get(mode, (mode, None))
        x = np.arange(1, len(c) + 1)
        line, = ax.plot(x, running_accuracy(c), color=color, lw=2.0,
                        label=f"{label}: {100.0 * c.mean():.1f}% overall")
        if len(c) > win:
            ax.plot(x, window_accuracy(c, win), color=line.get_color(), lw=0.9, alpha=0.45,
                    label=f"{label}, last {win} samples")
    ax.set_xlabel("samples streamed (each predicted before it is trained on)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(1, max(2, n_max))
    ax.grid(True, alpha=0.3)
    sub = "\n".join(w for line in subtitle.splitlines() for w in textwrap.wrap(line, 95))
    ax.set_title(title + (f"\n{sub}" if sub else ""), fontsize=10)
    if curves:
        # below the axes: the curves may be anywhere in 0..100
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9,
                  frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path
