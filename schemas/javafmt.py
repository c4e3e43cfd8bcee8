"""Numbers written the way Spark's JSON writer (Java's ``Double.toString``) writes them.

The real activity-data files say ``5.0354E-4`` where Python says ``0.00050354``: plain decimal
for magnitudes in [1e-3, 1e7), otherwise a mantissa with one digit before the point, a capital
``E`` and an unsigned-positive exponent (``1.0E7``, ``-3.814697E-4``). The digits are the
shortest that read back as the same double, as ``repr`` gives them.
"""

from __future__ import annotations

import math


def java_double(value: float) -> str:
    """Format a finite float as Java's ``Double.toString`` does (shortest round-trip digits).

    Raises:
        ValueError: for NaN or infinity, which JSON cannot carry.
    """
    if not math.isfinite(value):
        msg = f"{value!r} is not a finite number"
        raise ValueError(msg)
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    text = repr(value)
    if 1e-3 <= magnitude < 1e7:
        # repr uses fixed notation in this range (it switches to exponents only below 1e-4
        # and from 1e16), so the only difference to Java is the mandatory fraction digit.
        return text if "." in text else text + ".0"
    mantissa, _, exponent = text.partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # The decimal exponent of the first significant digit.
    point = len(int_part) if int_part != "0" else -(len(frac_part) - len(frac_part.lstrip("0")))
    exp10 = (int(exponent) if exponent else 0) + point - 1
    digits = digits.rstrip("0") or "0"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exp10}"
