"""Does a live object already carry everything we would apply? (pure)

We compare instead of re-applying so that a converged resync sends no write at all.
Desired is a subset of live when every field we set has the same value there; fields
the apiserver or other controllers add (defaults, status, replicas under an HPA) are
ignored. Lists must match element by element, since we own them whole.

Quantities are the one kind of value the apiserver rewrites: it parses every
`resource.Quantity` and stores its own canonical string ("0.5" becomes "500m", "1024Mi"
becomes "1Gi", a 40-digit `Ki` value becomes "9223372036854775807"), and Pod defaulting
rounds every ResourceList entry up to milli units. `stored_quantity` reproduces exactly what
the apiserver stores (a port of k8s.io/apimachinery/pkg/api/resource at v0.34: its parser,
its int64 fast path that keeps the caller's string, its rounding and cap, its canonical
formatter), and two scalars are the same when they would be stored as the same string.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any, Final

# Server-populated metadata that never appears in what we render.
_IGNORED_METADATA = {"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"}


def drift(desired: Any, live: Any, path: str = "") -> list[str]:
    """Paths (dotted) where `live` does not carry `desired`; empty when in sync."""
    return _drift(desired, live, path, ())


def _drift(desired: Any, live: Any, path: str, keys: tuple[str | int, ...]) -> list[str]:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [path or "."]
        found: list[str] = []
        for key, want in desired.items():
            if path == ".metadata" and key in _IGNORED_METADATA:
                continue
            sub = f"{path}.{key}"
            if key not in live:
                if _is_zero(want):
                    continue  # omitempty: the server drops zero values we send

                found.append(sub)
                continue
            found.extend(_drift(want, live[key], sub, (*keys, key)))
        return found
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return [path]
        found = []
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            found.extend(_drift(want, have, f"{path}[{index}]", (*keys, index)))
        return found
    return [] if _same_scalar(desired, live, _in_resource_list(keys)) else [path]


def _is_zero(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value is False
    return bool(value in (0, "", {}, []))


def _in_resource_list(keys: tuple[str | int, ...]) -> bool:
    """Whether the value at `keys` is an entry of a core/v1 ResourceList, which Pod
    defaulting rounds up to milli units: `resources.{requests,limits}` of containers, of
    the pod and of ephemeral volume claims, and the pod's `overhead`."""
    if len(keys) >= 3 and keys[-3] == "resources" and keys[-2] in ("requests", "limits"):
        return True
    return len(keys) >= 2 and keys[-2] == "overhead"


def _same_scalar(desired: Any, live: Any, resource_list: bool = False) -> bool:
    if desired == live and type(desired) is type(live):
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    # Quantities come back canonicalised ("0.5" -> "500m", 1 -> "1").
    if isinstance(desired, str | int | float) and isinstance(live, str | int | float):
        try:
            return stored_quantity(desired, resource_list=resource_list) == stored_quantity(
                live, resource_list=resource_list
            )
        except ValueError:
            return False
    return False


# --- resource.Quantity, as the apiserver parses and prints it ------------------------------

DECIMAL_SI: Final = "DecimalSI"
BINARY_SI: Final = "BinarySI"
DECIMAL_EXPONENT: Final = "DecimalExponent"

_INT64_MAX: Final = (1 << 63) - 1
_NANO: Final = -9
_MILLI: Final = -3
_MAX_INT64_FACTORS: Final = 18
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DECIMAL_SUFFIXES: Final = {
    "": 0,
    "n": -9,
    "u": -6,
    "m": -3,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT: Final = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT: Final = {e: s for s, e in _BINARY_SUFFIXES.items()}

# Exact arithmetic: no operation below may round (the values are bounded by the input's
# length, so the precision is a ceiling, not an allocation).
_EXACT: Final = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


@dataclass(frozen=True)
class Quantity:
    """A parsed `resource.Quantity`: its exact value, its format, and the string the
    apiserver keeps verbatim when the input was already canonical (Go's `q.s`)."""

    value: Decimal
    format: str
    text: str | None = None
    int_scale: int | None = None
    """Scale of Go's int64 fast-path representation, None for its inf.Dec one."""

    def __str__(self) -> str:
        return self.text if self.text is not None else _canonical(self.value, self.format)

    def round_up(self, scale: int) -> Quantity:
        """Go's `Quantity.RoundUp(scale)`: away from zero to 10**scale."""
        if self.int_scale is not None and self.int_scale >= scale:
            return self
        value = _round_up(self.value, scale)
        return replace(self, value=value, text=None, int_scale=None)


def parse_quantity(text: str) -> Quantity:
    """Go's `resource.ParseQuantity`; ValueError where it returns an error."""
    if not text:
        raise ValueError("quantity is empty")
    if text == "0":
        return Quantity(Decimal(0), DECIMAL_SI, text, 0)
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)

    precision = 0
    scale = 0
    mantissa = 1
    if fmt == BINARY_SI:
        if exponent >= 0 and not denom:
            mantissa = 1 << exponent
            # Go: 15 - len(num) - int32(float32(exponent)*3/10) - 1 (exact for 10..60).
            precision = 15 - len(num) - exponent * 3 // 10 - 1
        else:
            precision = -1
    else:
        scale = exponent
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))

    if precision >= 0:
        scale -= len(denom)
        if scale >= _NANO:
            shifted = num + denom
            value = int(shifted)
            result = value * mantissa
            if value > _INT64_MAX:
                raise ValueError("unable to parse numeric part of quantity")
            if result <= _INT64_MAX:
                if not positive:
                    result = -result
                keep = (
                    exponent % 10 == 0 and value & 0x07 != 0
                    if fmt == BINARY_SI
                    else scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
                )
                return Quantity(Decimal(f"{result}E{scale}"), fmt, text if keep else None, scale)

    amount = Decimal(f"{num}.{denom or '0'}")
    if base == 10:
        amount = amount.scaleb(exponent, context=_EXACT)
    else:
        amount = _EXACT.multiply(amount, Decimal(1 << exponent))
    if amount != 0:
        amount = _round_up(amount, _NANO)
    if fmt == BINARY_SI and amount > _INT64_MAX:
        amount = Decimal(_INT64_MAX)  # the cap Go applies to binary quantities only
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    if not positive:
        amount = _EXACT.minus(amount)
    return Quantity(amount, fmt)


def stored_quantity(value: str | int | float, *, resource_list: bool = False) -> str:
    """The string the apiserver stores for `value` sent in a `resource.Quantity` field;
    `resource_list`: an entry of a core/v1 ResourceList (container requests and limits),
    which Pod defaulting also rounds up to milli units. ValueError when the apiserver
    would refuse the value."""
    text = value if isinstance(value, str) else _json_number(value)
    quantity = parse_quantity(text.strip())
    if resource_list:
        quantity = quantity.round_up(_MILLI)
    return str(quantity)


def quantity_value(value: str | int | float, *, resource_list: bool = False) -> Decimal:
    """The exact value the apiserver holds for `value` (after its rounding and cap)."""
    text = value if isinstance(value, str) else _json_number(value)
    quantity = parse_quantity(text.strip())
    if resource_list:
        quantity = quantity.round_up(_MILLI)
    return quantity.value


def _scan(text: str) -> tuple[bool, str, str, str]:
    """Go's `parseQuantityString`: sign, numerator (leading zeros stripped, "0" when
    empty), denominator, suffix."""
    positive = True
    pos = 0
    end = len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isascii() and text[pos].isdigit():
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    if pos < end:
        raise ValueError(f"quantity {text!r} is not of the form <number><suffix>")
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """Go's suffixer: (base, exponent, format) of a suffix."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    digits = suffix[1:]
    if len(suffix) > 1 and suffix[0] in "eE" and _go_parse_int(digits):
        exponent = int(digits)
        if -(1 << 63) <= exponent <= _INT64_MAX:
            # int32(parsed): Go truncates the exponent to 32 bits.
            return 10, (exponent + (1 << 31)) % (1 << 32) - (1 << 31), DECIMAL_EXPONENT
    raise ValueError(f"unable to parse quantity suffix {suffix!r}")


def _go_parse_int(text: str) -> bool:
    body = text[1:] if text[:1] in ("+", "-") else text
    return bool(body) and body.isascii() and body.isdigit()


def _round_up(value: Decimal, scale: int) -> Decimal:
    """inf.Dec Round(value, -scale, RoundUp): away from zero, only when finer than 10**scale."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent >= scale:
        return value
    return value.quantize(Decimal(f"1E{scale}"), rounding=ROUND_UP, context=_EXACT)


def _canonical(value: Decimal, fmt: str) -> str:
    """Go's `Quantity.CanonicalizeBytes`."""
    if value == 0:
        return "0"
    if fmt == BINARY_SI:
        if -1024 < value < 1024:
            fmt = DECIMAL_SI
        else:
            rounded = _round_up(value, 0)
            if rounded != value:
                fmt = DECIMAL_SI  # don't lose precision: show as DecimalSI
            else:
                return _base1024(int(rounded))
    if fmt not in (DECIMAL_SI, BINARY_SI):
        fmt = DECIMAL_EXPONENT
    number, exponent = _base10(value)
    if fmt == DECIMAL_EXPONENT:
        return number if exponent == 0 else f"{number}e{exponent}"
    # No suffix for an exponent beyond E or below n: Go prints the bare number then.
    return number + _DECIMAL_BY_EXPONENT.get(exponent, "")


def _base10(value: Decimal) -> tuple[str, int]:
    """Mantissa digits and an exponent that is a multiple of 3, no trailing zeros beyond
    that (Go's `AsCanonicalBytes`)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).lstrip("0") or "0"
    stripped = text.rstrip("0")
    exponent += len(text) - len(stripped)
    text = stripped
    while exponent % 3 != 0:
        text += "0"
        exponent -= 1
    return ("-" if sign else "") + text, exponent


def _base1024(value: int) -> str:
    """Go's `AsCanonicalBase1024Bytes` with its binary suffix."""
    magnitude = abs(value)
    times = 0
    while magnitude >= 1024 and magnitude % 1024 == 0:
        magnitude //= 1024
        times += 1
    number = f"-{magnitude}" if value < 0 else str(magnitude)
    return number + _BINARY_BY_EXPONENT.get(times * 10, "")


def _json_number(value: int | float) -> str:
    """The text the apiserver's Quantity parser sees for a JSON number we send: integers of
    int64 range as they are, anything else as a float64 in Go's `encoding/json` form
    (k8s.io/apimachinery/pkg/util/yaml keeps int64s and turns other numbers into float64)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a quantity")
    if isinstance(value, int) and -(1 << 63) <= value <= _INT64_MAX:
        return str(value)
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{value} does not fit a float64") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value} is not a finite number")
    if number == 0:
        return "-0" if str(number).startswith("-") else "0"
    if 1e-6 <= abs(number) < 1e21:
        return format(Decimal(repr(number)).normalize(_EXACT), "f")
    text = repr(number)  # shortest round-trip digits, as Go's strconv 'e' with -1
    if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
        text = text[:-2] + text[-1]  # Go: clean up e-09 to e-9
    return text
