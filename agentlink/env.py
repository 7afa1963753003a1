"""How a setting is declared, and how the declarations are read from the environment.

A settings record (``Settings``, ``DataSettings``, ``BrandSettings``) is a frozen dataclass
whose fields are declared with the functions below: each names its environment variable,
its parser, its default, its bounds and what it is for, in one place. ``read`` builds the
record from an environment: an unset or blank variable leaves the field's default, a bad
value raises ``ConfigurationError`` naming the variable. ``variables`` lists every
variable a record reads, which is how the deployment files are checked against the code.

Parsers get the variable's name and its stripped, non-empty value, so their messages can
name the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from agentlink.errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
S = TypeVar("S", bound=str)
R = TypeVar("R", bound="DataclassInstance")

_KEY = "agentlink.env"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

Parser = Callable[[str, Any], Any]
"""``(variable name, value) -> field value``; the value is a stripped, non-empty string,
or for a list variable a non-empty tuple of stripped items."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable of a settings record."""

    name: str
    doc: str
    parse: Parser | None = None
    """None: the record's own reader handles it (it combines several variables)."""
    aliases: tuple[str, ...] = ()
    """Variables read when ``name`` is unset or blank, in order."""
    listing: bool = False
    """A comma-separated list: blank items are dropped, and no items at all means unset."""

    def raw(self, env: Mapping[str, str]) -> Any:
        """The value to parse, or None when the variable (and every alias) is unset."""
        for name in (self.name, *self.aliases):
            value = env.get(name, "").strip()
            if self.listing:
                items = tuple(item.strip() for item in value.split(",") if item.strip())
                if items:
                    return items
            elif value:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Group:
    """A field holding a settings record of its own, read by ``read_group``."""

    read_group: Callable[[Mapping[str, str]], Any]
    record: type[Any]
    also: tuple[Variable, ...] = ()
    """Variables the group's reader consults besides its fields' (a settings file)."""


def read(cls: type[R], env: Mapping[str, str], **given: Any) -> R:
    """The record ``cls`` as ``env`` sets it; ``given`` fields are taken as they are."""
    values: dict[str, Any] = {}
    for spec in fields(cls):
        declared = spec.metadata.get(_KEY)
        if spec.name in given or declared is None:
            continue
        if isinstance(declared, Group):
            values[spec.name] = declared.read_group(env)
            continue
        raw = declared.raw(env)
        if raw is not None and declared.parse is not None:
            values[spec.name] = declared.parse(declared.name, raw)
    return cls(**values, **given)


def variables(cls: type[DataclassInstance]) -> Iterator[Variable]:
    """Every variable the record ``cls`` (and the records inside it) reads."""
    for spec in fields(cls):
        declared = spec.metadata.get(_KEY)
        if isinstance(declared, Group):
            yield from variables(declared.record)
            yield from declared.also
        elif isinstance(declared, Variable):
            yield declared


def variable(cls: type[DataclassInstance], name: str) -> Variable:
    """The variable behind the field ``name`` of ``cls``."""
    declared = next(spec for spec in fields(cls) if spec.name == name).metadata[_KEY]
    assert isinstance(declared, Variable)
    return declared


def default(cls: type[DataclassInstance], name: str) -> Any:
    """The default of the field ``name`` of ``cls`` (called, for a default factory)."""
    spec = next(spec for spec in fields(cls) if spec.name == name)
    return spec.default_factory() if callable(spec.default_factory) else spec.default


# -- declaring fields ---------------------------------------------------------------------------


def setting(
    name: str,
    default: T,
    parse: Callable[[str, Any], T] | None,
    doc: str,
    *,
    secret: bool = False,
    aliases: tuple[str, ...] = (),
    listing: bool = False,
) -> T:
    """A field read from ``name`` by ``parse`` (None: by the record's own reader)."""
    declared = Variable(name, doc, parse, aliases, listing)
    return field(default=default, repr=not secret, metadata={_KEY: declared})


def computed(name: str, factory: Callable[[], T], parse: Callable[[str, Any], T], doc: str) -> T:
    """A field read from ``name``, whose default is worked out at start (the host name)."""
    return field(default_factory=factory, metadata={_KEY: Variable(name, doc, parse)})


def group(record: type[T], read_group: Callable[[Mapping[str, str]], T], *also: Variable) -> T:
    """A field holding the settings record ``record``, read by ``read_group``."""
    return field(default_factory=record, metadata={_KEY: Group(read_group, record, also)})


def integer(name: str, default: int, doc: str, *, minimum: int = 0) -> int:
    """A whole number, at least ``minimum``."""
    return setting(name, default, integer_parser(minimum), doc)


def number(
    name: str, default: float, doc: str, *, minimum: float = 0.0, maximum: float | None = None
) -> float:
    """A number, at least ``minimum`` (and at most ``maximum``)."""
    return setting(name, default, number_parser(minimum, maximum), doc)


def choice(name: str, default: S, choices: tuple[S, ...], doc: str) -> S:
    """One of ``choices``, in any case."""
    return setting(name, default, choice_parser(choices), doc)


def flag(name: str, doc: str) -> bool:
    """true/false, yes/no, on/off or 1/0; false when unset."""
    return setting(name, False, parse_flag, doc)


def text(
    name: str,
    default: str,
    doc: str,
    *,
    parse: Callable[[str, str], str] | None = None,
    secret: bool = False,
    aliases: tuple[str, ...] = (),
) -> str:
    """Text, stripped (and passed through ``parse``, which may check or normalise it)."""
    return setting(name, default, parse or verbatim, doc, secret=secret, aliases=aliases)


def items(
    name: str,
    doc: str,
    *,
    default: tuple[str, ...] = (),
    parse: Callable[[str, tuple[str, ...]], tuple[str, ...]] | None = None,
    secret: bool = False,
) -> tuple[str, ...]:
    """A comma-separated list (passed through ``parse``, which may check or normalise it)."""
    return setting(name, default, parse or _listed, doc, secret=secret, listing=True)


# -- parsers ------------------------------------------------------------------------------------


def integer_parser(minimum: int) -> Callable[[str, str], int]:
    """Parses a whole number of at least ``minimum``."""

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
        return value

    return parse


def number_parser(minimum: float, maximum: float | None = None) -> Callable[[str, str], float]:
    """Parses a number of at least ``minimum`` (and at most ``maximum``)."""

    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
        if maximum is not None and not minimum <= value <= maximum:
            raise ConfigurationError(
                f"{name} must be between {minimum:g} and {maximum:g}, got {value:g}"
            )
        if value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
        return value

    return parse


def choice_parser(choices: tuple[S, ...]) -> Callable[[str, str], S]:
    """Parses one of ``choices``, in any case."""

    def parse(name: str, raw: str) -> S:
        for option in choices:
            if raw.lower() == option:
                return option
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw.lower()!r}")

    return parse


def parse_flag(name: str, raw: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw.lower()!r}")


def squashed(_name: str, raw: str) -> str:
    """Runs of white space as one space: a name or a line of text."""
    return " ".join(raw.split())


def verbatim(_name: str, raw: str) -> str:
    """The value as it is (stripped)."""
    return raw


def _listed(_name: str, given: tuple[str, ...]) -> tuple[str, ...]:
    return given
