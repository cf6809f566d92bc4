"""The evaluation report: the metrics.json dict (protocol and summaries) and its Markdown table."""

import keras
import numpy as np

from keras_cvae import tasks

SERIES = ("copy_last_frame", "model_single", "model_mean_of_n", "model_best_of_n")


def series_scores(result):
    """Per-sequence, per-frame scores of every reported series.

    For N samples per sequence the series are the first sample alone ("1 sample"), the
    mean over samples ("mean of N") and the best sample ("best of N": per sequence and
    per metric, the sample whose horizon-averaged score is highest, as the SVG reference
    picks it), beside the copy-last-context-frame baseline.

    Args:
        result: An `EvalResult`.

    Returns:
        {series: {metric: [sequences, horizon]}} for the series in `SERIES`.
    """
    single, mean, best = {}, {}, {}
    for name, scores in result.model_scores.items():
        single[name] = scores[0]
        mean[name] = scores.mean(axis=0)
        choice = np.argmax(scores.mean(axis=2), axis=0)  # [sequences]
        best[name] = scores[choice, np.arange(scores.shape[1])]
    return {
        "copy_last_frame": result.baseline_scores,
        "model_single": single,
        "model_mean_of_n": mean,
        "model_best_of_n": best,
    }


def _standard_error(values):
    return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def summarize(result):
    """Every number of the report: averages, standard errors, per-frame and per-sequence.

    Args:
        result: An `EvalResult`.

    Returns:
        {"summary": {series: {metric: {"mean", "sem"}}}, "per_frame": {series: {metric:
        [horizon]}}, "per_sequence": {series: {metric: [sequences]}}}; "sem" is the
        standard error over sequences of the horizon-averaged score. With several samples
        "diversity" adds {"mean", "sem", "per_frame"} of the RMS distance between two
        samples beside "sample_rms_error", the RMS error of one sample, on the same scale.
    """
    summary, per_frame, per_sequence = {}, {}, {}
    for series, scores in series_scores(result).items():
        summary[series], per_frame[series], per_sequence[series] = {}, {}, {}
        for name, values in scores.items():
            sequence_means = values.mean(axis=1)
            summary[series][name] = {"mean": float(values.mean()), "sem": _standard_error(sequence_means)}
            per_frame[series][name] = [float(v) for v in values.mean(axis=0)]
            per_sequence[series][name] = [float(v) for v in sequence_means]
    report = {"summary": summary, "per_frame": per_frame, "per_sequence": per_sequence}
    if result.diversity is not None:
        mse = 10.0 ** (-result.model_scores["psnr"] / 10.0)  # PSNR = 10 log10(1 / MSE)
        report["diversity"] = {
            "mean": float(result.diversity.mean()),
            "sem": _standard_error(result.diversity.mean(axis=1)),
            "per_frame": [float(v) for v in result.diversity.mean(axis=0)],
            "sample_rms_error": float(np.sqrt(np.mean(mse))),
        }
    return report


def build_report(config, result, *, run, info, model_config, data):
    """The content of metrics.json but its "time": the protocol and every score.

    Args:
        config: The `EvalConfig`.
        result: Its `EvalResult`.
        run: The evaluated `RunFolder`.
        info: The run's run.json content.
        model_config: The run's `SVGConfig`.
        data: `describe_source` of the evaluated data.
    """
    protocol = {
        "context_frames": result.n_past,
        "trained_context_frames": model_config.n_past,
        "horizon": result.horizon,
        "context_frames_excluded": True,
        "teacher_forcing": 0.0,
        "latents": "prior",
        "samples": config.samples,
        "best_of_n": "per sequence and metric, the sample with the highest horizon-averaged score",
        "seed": config.seed,
        "data": data["path"],
        "data_kind": data["kind"],
        "split": config.split,
        "sequences": result.sequences,
        "run": str(run.path),
        "checkpoint": str(run.model_file),
        "epochs_done": info.get("epochs_done"),
        "jit_compile": config.jit_compile or keras.backend.backend() == "jax",
        "backend": keras.backend.backend(),
        "batch_size": config.batch_size,
    }
    return {"protocol": protocol, **summarize(result)}


def series_label(series, samples):
    """A series' name in the table and the plot's legend.

    Args:
        series: One of `SERIES`.
        samples: Samples per sequence.
    """
    return {
        "copy_last_frame": "copy last context frame",
        "model_single": "model, 1 sample",
        "model_mean_of_n": f"model, mean of {samples} samples",
        "model_best_of_n": f"model, best of {samples} samples",
    }[series]


def protocol_sentence(protocol):
    """One paragraph stating the protocol, for under the table; its task writes it.

    Args:
        protocol: The report's "protocol" dict.
    """
    return tasks.task_of(protocol).protocol_sentence(protocol)


def diversity_sentence(report):
    """How different the samples are, in one sentence (empty for one sample).

    Args:
        report: The report dict (metrics.json content).
    """
    diversity = report.get("diversity")
    if not diversity:
        return ""
    frames = diversity["per_frame"]
    return (
        f"Sample diversity: two samples of a sequence differ by {diversity['mean']:.4f} RMS per pixel "
        f"(+- {diversity['sem']:.4f}; {frames[0]:.4f} at the first predicted frame, {frames[-1]:.4f} at "
        f"the last), where one sample's RMS error is {diversity['sample_rms_error']:.4f}; near 0 means the "
        "samples are the same frames and the latent carries nothing.\n"
    )


def format_table(report):
    """The paste-able Markdown table of a report, its diversity and protocol paragraphs.

    Args:
        report: The report dict (metrics.json content).
    """
    samples = report["protocol"]["samples"]
    lines = [
        "| method | PSNR (dB) | SSIM | PSNR per channel (dB) |",
        "|---|---|---|---|",
    ]
    for series in SERIES:
        cells = report["summary"][series]
        lines.append(
            f"| {series_label(series, samples)} "
            f"| {cells['psnr']['mean']:.2f} +- {cells['psnr']['sem']:.2f} "
            f"| {cells['ssim']['mean']:.4f} +- {cells['ssim']['sem']:.4f} "
            f"| {cells['psnr_per_channel']['mean']:.2f} +- {cells['psnr_per_channel']['sem']:.2f} |"
        )
    diversity = diversity_sentence(report)
    return "\n".join(lines) + "\n\n" + (diversity + "\n" if diversity else "") + protocol_sentence(
        report["protocol"]) + "\n"
