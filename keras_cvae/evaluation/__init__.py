"""Evaluation of a trained run: the n_past -> horizon video-prediction protocol, scores and report."""

from keras_cvae.evaluation.protocol import EvalConfig, EvaluationError, check_batch_matches_model
from keras_cvae.evaluation.report import summarize
from keras_cvae.evaluation.run import evaluate_run
from keras_cvae.evaluation.scoring import EvalResult, evaluate_model, make_rollout, make_scorer

__all__ = [
    "EvalConfig",
    "EvalResult",
    "EvaluationError",
    "check_batch_matches_model",
    "evaluate_model",
    "evaluate_run",
    "make_rollout",
    "make_scorer",
    "summarize",
]
