"""Charts of a run: training curves per epoch and metrics per predicted frame.

Files are written atomically (`keras_cvae.files`). matplotlib is imported only inside the
functions that draw (Agg canvas, no pyplot, no global backend change), so importing this
module stays cheap.
"""

import math
from collections.abc import Mapping

import numpy as np

from keras_cvae.files import atomic_path


_SCHEDULE_KEYS = ("kl_anneal", "tfr")
_FAMILY_ORDER = ("losses", "schedules", "psnr", "ssim", "learning rate", "other")
_FAMILY_TITLE = {"schedules": "KL weight and teacher forcing", "psnr": "PSNR", "ssim": "SSIM"}
_FAMILY_YLABEL = {"schedules": "weight / ratio", "psnr": "PSNR (dB)", "ssim": "SSIM"}


def _family(key):
    """Which subplot a history key goes to (`val_` prefixes share their base's plot)."""
    base = key[4:] if key.startswith("val_") else key
    base = base.lower()
    if base in _SCHEDULE_KEYS:
        return "schedules"
    if "psnr" in base:
        return "psnr"
    if "ssim" in base:
        return "ssim"
    if base in ("lr", "learning_rate"):
        return "learning rate"
    if "loss" in base or base in ("mse", "kl", "nll", "recon", "reconstruction", "mae", "l1", "l2"):
        return "losses"
    return "other"


def _figure(n_panels, panel_size=(5.0, 3.4), ncols=2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n_panels - 1)]
    # The last panel takes the rest of its row, so an odd count leaves no empty cell.
    axes.append(fig.add_subplot(nrows, ncols, (n_panels, nrows * ncols)))
    return fig, axes


def _save_figure(fig, path, dpi=100):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _finite_values(values):
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return array if array.size else None


def plot_curves(path, history, *, title=None):
    """Plots per-epoch training curves to a PNG, one subplot per family of quantities.

    Families: losses (`loss`, `mse`, `kl`, ...; log scale when all values are positive),
    schedules (`kl_anneal`, `tfr` together on [0, 1]), PSNR (`psnr` with `val_psnr`, ...),
    SSIM, learning rate (log scale), other. `val_*` keys join their base's subplot and
    are dashed. Keys that are missing, empty or not numeric are skipped; a history with
    nothing to plot still gives a PNG saying so.

    Args:
        path: Destination `.png` file; folders are created.
        history: Mapping of name to per-epoch values (e.g. `keras.callbacks.History.history`).
        title: Optional figure title.

    Returns:
        `path`.
    """
    groups = {}
    for key, values in (history or {}).items():
        array = _finite_values(values)
        if array is None:
            continue
        groups.setdefault(_family(str(key)), []).append((str(key), array))
    families = [name for name in _FAMILY_ORDER if name in groups]
    fig, axes = _figure(max(len(families), 1))
    if title:
        fig.suptitle(title)
    if not families:
        axes[0].text(0.5, 0.5, "no data", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
        return _save_figure(fig, path)
    for ax, family in zip(axes, families):
        all_values = []
        ordered = sorted(groups[family], key=lambda item: (item[0].startswith("val_"), item[0]))
        for key, array in ordered:
            epochs = np.arange(1, array.size + 1)
            style = "--" if key.startswith("val_") else "-"
            marker = "o" if array.size <= 30 else None
            ax.plot(epochs, array, style, marker=marker, markersize=3, label=key)
            all_values.append(array[np.isfinite(array)])
        finite = np.concatenate(all_values) if all_values else np.array([])
        if family in ("losses", "learning rate") and finite.size and np.all(finite > 0):
            ax.set_yscale("log")
        if family == "schedules":
            ax.set_ylim(-0.05, 1.05)
        ylabel = _FAMILY_YLABEL.get(family, family)
        ax.set_title(_FAMILY_TITLE.get(family, family))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    return _save_figure(fig, path)


def _series_metric(values, index, name, metric):
    """Values of one metric of one series: `[T]` or `[N, T]` as float64."""
    if isinstance(values, Mapping):
        if metric not in values:
            return None
        array = np.asarray(values[metric], dtype=np.float64)
    else:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim not in (2, 3):
            raise ValueError(
                f"per_frame[{name!r}] must be a mapping metric -> [T] / [N, T], or an array "
                f"[M, T] / [N, M, T] with M = len(metric_names); got shape {array.shape}"
            )
        if index >= array.shape[-2]:
            return None
        array = array[..., index, :]
    if array.ndim not in (1, 2):
        raise ValueError(
            f"per_frame[{name!r}][{metric!r}] must be [T] or [N, T], got {array.shape}"
        )
    return array


def plot_per_frame_metrics(path, per_frame, *, n_past, metric_names=("psnr", "ssim"), title=None):
    """Plots per-predicted-frame metric curves of several series, one subplot per metric.

    Args:
        path: Destination `.png` file; folders are created.
        per_frame: Mapping of series name (e.g. "model (1 sample)", "model (best of 100)",
            "copy last frame") to its values over the predicted frames only, either a
            mapping `{metric: [T] or [N, T]}` or an array `[M, T]` / `[N, M, T]` with the
            metrics in `metric_names` order. With a leading N (sequences) the curve is
            the mean and a band shows +-1 standard error. Missing metrics are skipped.
        n_past: Number of context frames (the x axis is the frame index after them,
            1..T, i.e. absolute frame n_past + 1 .. n_past + T).
        metric_names: Metrics to plot, one subplot each.
        title: Optional figure title.

    Returns:
        `path`.
    """
    fig, axes = _figure(len(metric_names), panel_size=(5.5, 3.8))
    if title:
        fig.suptitle(title)
    for index, (ax, metric) in enumerate(zip(axes, metric_names)):
        plotted = False
        for name, values in per_frame.items():
            array = _series_metric(values, index, name, metric)
            if array is None or array.size == 0:
                continue
            if array.ndim == 2:
                mean = np.nanmean(array, axis=0)
                count = np.sum(np.isfinite(array), axis=0)
                sem = np.nanstd(array, axis=0) / np.sqrt(np.maximum(count, 1))
            else:
                mean, sem = array, None
            frames = np.arange(1, mean.size + 1)
            marker = "o" if mean.size <= 30 else None
            (line,) = ax.plot(frames, mean, marker=marker, markersize=3, label=name)
            if sem is not None and array.shape[0] > 1:
                ax.fill_between(frames, mean - sem, mean + sem, color=line.get_color(), alpha=0.2)
            plotted = True
        label = {"psnr": "PSNR (dB)", "ssim": "SSIM", "diversity": "RMS distance between samples"}.get(
            metric.lower(), metric)
        ax.set_title(label)
        ax.set_xlabel(f"predicted frame (after {n_past} context frames)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize="small")
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    return _save_figure(fig, path)


def plot_latent_usage(path, record, *, title=None):
    """Plots what the latent carries over training: KL per latent dimension and per step.

    Left: a heatmap of the KL (nats) of every top-level latent dimension after each epoch;
    a dark row is a dimension the model does not use. Right: the KL of each rollout step
    (summed over dimensions) after the first, the middle and the latest epoch; it rises
    where the past leaves the future open.

    Args:
        path: Destination `.png` file; folders are created.
        record: {"epochs": [E], "kl_per_dimension": [E, D], "kl_per_step": [E, T]}.
        title: Optional figure title.

    Returns:
        `path`.
    """
    epochs = np.asarray(record["epochs"])
    per_dimension = np.asarray(record["kl_per_dimension"], dtype=np.float64)
    per_step = np.asarray(record["kl_per_step"], dtype=np.float64)
    fig, (left, right) = _figure(2, panel_size=(5.5, 3.8))
    if title:
        fig.suptitle(title)
    image = left.imshow(per_dimension.T, aspect="auto", origin="lower", cmap="magma",
                        extent=(epochs[0] - 0.5, epochs[-1] + 0.5, -0.5, per_dimension.shape[1] - 0.5))
    fig.colorbar(image, ax=left, label="KL (nats)")
    left.set_title("KL per latent dimension")
    left.set_xlabel("epoch")
    left.set_ylabel("dimension of z")
    left.xaxis.get_major_locator().set_params(integer=True)
    shown = sorted({0, len(epochs) // 2, len(epochs) - 1})
    steps = np.arange(1, per_step.shape[1] + 1)
    for index in shown:
        right.plot(steps, per_step[index], marker="o", markersize=3, label=f"epoch {epochs[index]}")
    right.set_title("KL per rollout step (all dimensions)")
    right.set_xlabel("rollout step t: frame t -> frame t + 1")
    right.set_ylabel("KL (nats)")
    right.grid(True, alpha=0.3)
    right.legend(fontsize="small")
    right.xaxis.get_major_locator().set_params(integer=True)
    return _save_figure(fig, path)
