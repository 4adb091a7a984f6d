"""Argument checks shared by every public entry point.

Every check raises ``TypeError`` for a wrong type and ``ValueError`` for a bad value, with a
message that names the argument and says what was expected. They are cheap and run before any
heavy work.
"""

from __future__ import annotations

import numbers

import numpy as np
import quantities as pq
import torch

__all__ = [
    "check_random_state",
    "torch_generator",
    "check_time_quantity",
    "check_positive_int",
    "check_probability",
    "check_nonnegative_float",
    "resolve_device",
]


def check_random_state(random_state, name: str = "random_state") -> np.random.Generator:
    """Return a local ``np.random.Generator`` from ``None``, an int or a Generator.

    Global numpy state is never read or set. ``None`` gives fresh OS entropy.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (bool, np.bool_)):
        raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got a bool")
    if isinstance(random_state, numbers.Integral):
        if int(random_state) < 0:
            raise ValueError(f"{name} must be a non-negative int, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise TypeError(
        f"{name} must be None, an int or a numpy.random.Generator, got {type(random_state).__name__}"
    )


def torch_generator(rng: np.random.Generator, device: torch.device | str = "cpu") -> torch.Generator:
    """A local ``torch.Generator`` seeded from a numpy Generator (global torch state is untouched)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return generator


def check_time_quantity(value, name: str, *, allow_none: bool = False, positive: bool = False,
                        nonnegative: bool = False, scalar: bool = True) -> pq.Quantity | None:
    """Check that ``value`` is a time ``pq.Quantity`` and return it rescaled to seconds.

    Raises ``TypeError`` for a float/array without units and ``ValueError`` for non-time or
    dimensionless units, NaN, or a sign that is not allowed.
    """
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a quantities.Quantity with time units (e.g. 5 * pq.ms), got None")
    if not isinstance(value, pq.Quantity):
        raise TypeError(
            f"{name} must be a quantities.Quantity with time units (e.g. 5 * pq.ms), got {type(value).__name__}"
        )
    if value.dimensionality.simplified != pq.s.dimensionality:
        raise ValueError(f"{name} must have time units (s, ms, ...), got units '{value.dimensionality}'")
    seconds = value.rescale(pq.s)
    if scalar and seconds.ndim != 0 and seconds.size != 1:
        raise ValueError(f"{name} must be a scalar time, got shape {seconds.shape}")
    magnitude = np.asarray(seconds.magnitude, dtype=float)
    if np.any(~np.isfinite(magnitude)):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and np.any(magnitude <= 0):
        raise ValueError(f"{name} must be positive, got {value}")
    if nonnegative and np.any(magnitude < 0):
        raise ValueError(f"{name} must be non-negative, got {value}")
    if scalar:
        return pq.Quantity(float(magnitude.reshape(-1)[0]), "s")
    return seconds


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Check an integer >= ``minimum`` (bools are rejected) and return it as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_probability(value, name: str) -> float:
    """Check a real number in [0, 1] and return it as ``float``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_nonnegative_float(value, name: str, *, positive: bool = False) -> float:
    """Check a finite real number >= 0 (> 0 with ``positive``) and return it as ``float``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value}")
    return value


def resolve_device(device) -> torch.device:
    """Resolve ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or a torch.device."""
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}") from err
    else:
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {type(device).__name__}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; pass device='cpu' or 'auto'")
    return resolved
