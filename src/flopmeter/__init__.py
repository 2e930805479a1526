"""flopmeter: exact FLOPs, MACs, params, memory traffic and speed of PyTorch models.

FLOPs (floating point operations) is an amount of work; FLOP/s is a speed.
"""

__version__ = "0.1.0"

from . import hardware  # noqa: E402
from .api import ModelError, profile, register_formula, unregister_formula  # noqa: E402
from .compat import get_model_complexity_info  # noqa: E402
from .compression import CompressionOptions, CompressionView  # noqa: E402
from .compression.compare import Comparison, compare  # noqa: E402
from .compression.micronet import MicroNetScore, micronet  # noqa: E402
from .cost import Cost  # noqa: E402
from .formula_checks import FormulaError  # noqa: E402
from .hardware import Hardware  # noqa: E402
from .inputs import InputSpec  # noqa: E402
from .llm import llm_cost  # noqa: E402
from .llm.training import training_step  # noqa: E402
from .notices import FlopmeterWarning, ModelStateWarning  # noqa: E402
from .onnx import OnnxModelError, profile_onnx  # noqa: E402
from .report import CONVENTIONS, ModuleStats, OperatorStats, Report, UnsupportedOp  # noqa: E402
from .roofline import Roofline, estimate_latency, roofline  # noqa: E402
from .timing import Timing, benchmark, predict_batches  # noqa: E402
from .tracing.events import OpEvent, TensorMeta  # noqa: E402

__all__ = [
    "CONVENTIONS",
    "Comparison",
    "CompressionOptions",
    "CompressionView",
    "MicroNetScore",
    "Cost",
    "FormulaError",
    "FlopmeterWarning",
    "Hardware",
    "InputSpec",
    "ModelError",
    "ModelStateWarning",
    "ModuleStats",
    "OnnxModelError",
    "OpEvent",
    "OperatorStats",
    "Report",
    "Roofline",
    "TensorMeta",
    "Timing",
    "UnsupportedOp",
    "__version__",
    "benchmark",
    "compare",
    "estimate_latency",
    "micronet",
    "hardware",
    "get_model_complexity_info",
    "llm_cost",
    "predict_batches",
    "profile",
    "profile_onnx",
    "register_formula",
    "roofline",
    "training_step",
    "unregister_formula",
]
