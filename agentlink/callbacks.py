"""Callbacks: which URLs a finished job's record may be POSTed to, and how it is signed.

A ``callback_url`` comes from the internet, so it is an SSRF vector: left unchecked it
would let anyone with an API key make our workers call the cloud metadata service or
Redis itself. The same ``CallbackPolicy`` is applied twice:

- at submission (the API answers 422 when the URL fails), and
- at delivery (the notifier resolves the host again, so a DNS answer that changed to a
  private address since — DNS rebinding — is refused, and connects to the very address it
  checked, so no second lookup can slip another one in).

The rules: ``https`` only (plain ``http`` for hosts listed with an ``http://`` prefix);
the host must match one of ``AGENTLINK_CALLBACK_HOSTS`` (fnmatch patterns, default
``*.make.com``); every address the host resolves to must be public — not private,
loopback, link-local (169.254.169.254), multicast, reserved or unspecified — and an IPv6
address that embeds an IPv4 one (IPv4-mapped or -compatible, 6to4, Teredo, NAT64) must pass
for the IPv4 address too.
``AGENTLINK_CALLBACK_ALLOW_INSECURE=true`` lifts the https and address rules (private
networks, tests); the host list always applies.

Deliveries are signed: ``X-AgentLink-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" keyed with AGENTLINK_WEBHOOK_SECRET>``, the timestamp (unix seconds)
in ``X-AgentLink-Timestamp``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.parse
from dataclasses import dataclass

from agentlink.errors import AgentLinkError
from agentlink.settings import Settings

SIGNATURE_HEADER = "X-AgentLink-Signature"
TIMESTAMP_HEADER = "X-AgentLink-Timestamp"
_PERMANENT_DNS_ERRORS = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class CallbackUrlError(AgentLinkError):
    """A callback URL the policy refuses (the API answers 422; a notifier gives up)."""


class CallbackDnsError(CallbackUrlError):
    """The callback host could not be resolved right now (may work later)."""


@dataclass(frozen=True, slots=True)
class HostRule:
    """One ``AGENTLINK_CALLBACK_HOSTS`` entry: a host pattern, and whether http is allowed."""

    pattern: str
    http: bool


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """A callback URL that passed the syntax, scheme and host checks."""

    url: str
    scheme: str
    host: str
    port: int
    target: str
    """Path and query, as sent in the request line."""

    def pinned_url(self, address: str) -> str:
        """The URL with the host replaced by ``address`` (the connection goes there)."""
        ip = ipaddress.ip_address(address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{host}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        """The ``Host`` header the receiver expects."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """Where callbacks may go (see the module docstring)."""

    rules: tuple[HostRule, ...]
    allow_insecure: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        """The policy of ``AGENTLINK_CALLBACK_HOSTS`` and ``AGENTLINK_CALLBACK_ALLOW_INSECURE``."""
        rules = []
        for raw in settings.callback_hosts:
            scheme, sep, pattern = raw.partition("://")
            if not sep:
                scheme, pattern = "https", raw
            rules.append(HostRule(pattern=pattern.rstrip("/").rstrip("."), http=scheme == "http"))
        return cls(rules=tuple(rules), allow_insecure=settings.callback_allow_insecure)

    @property
    def allowed(self) -> str:
        """The host patterns, for messages."""
        return ", ".join(("http://" if r.http else "") + r.pattern for r in self.rules)

    def check_url(self, url: str) -> CallbackTarget:
        """Syntax, scheme and host list; ``CallbackUrlError`` says what is wrong."""
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise CallbackUrlError(f"callback_url is not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in {"https", "http"}:
            raise CallbackUrlError("callback_url must be an https:// URL")
        if parts.username is not None or parts.password is not None:
            raise CallbackUrlError("callback_url must not carry a user name or password")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise CallbackUrlError("callback_url has no host")
        if not host.isascii():
            raise CallbackUrlError("callback_url host must be ASCII (use the punycode form)")
        rule = next((r for r in self.rules if fnmatch.fnmatchcase(host, r.pattern)), None)
        if rule is None:
            raise CallbackUrlError(
                f"callback_url host {host!r} is not allowed; allowed hosts: {self.allowed} "
                "(AGENTLINK_CALLBACK_HOSTS)"
            )
        if scheme == "http" and not (rule.http or self.allow_insecure):
            raise CallbackUrlError(
                "callback_url must use https:// (plain http is allowed only for hosts listed "
                "as http://<host> in AGENTLINK_CALLBACK_HOSTS)"
            )
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return CallbackTarget(
            url=urllib.parse.urlunsplit((scheme, parts.netloc, parts.path, parts.query, "")),
            scheme=scheme,
            host=host,
            port=port or (443 if scheme == "https" else 80),
            target=target,
        )

    def check_addresses(self, target: CallbackTarget, addresses: list[str]) -> list[str]:
        """All of ``addresses`` must be public (unless insecure is allowed); returns them."""
        if not addresses:
            raise CallbackDnsError(f"callback_url host {target.host!r} has no address")
        if self.allow_insecure:
            return addresses
        for address in addresses:
            problem = address_problem(address)
            if problem:
                where = "is" if _same_address(address, target.host) else "resolves to"
                raise CallbackUrlError(
                    f"callback_url host {target.host!r} {where} {address}, {problem}; "
                    "callbacks go to public addresses only"
                )
        return addresses

    async def resolve(self, target: CallbackTarget, timeout_s: float = 3.0) -> list[str]:
        """Resolve the host and check every address; the addresses that passed."""
        return self.check_addresses(target, await resolve_host(target, timeout_s))


def _same_address(address: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(host)
    except ValueError:
        return False


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses an IPv6 address reaches through, each with the mechanism's name.

    IPv4-mapped (``::ffff:a.b.c.d``) and IPv4-compatible (``::a.b.c.d``) addresses are the
    IPv4 address itself to a dual-stack socket; 6to4 (``2002::/16``) and NAT64
    (``64:ff9b::/96``) relays forward to the embedded address; Teredo (``2001::/32``)
    carries the server's address and the client's (its NAT's) mapped address. Python's
    flags judge only the IPv6 address, so ``2002:7f00:1::`` (127.0.0.1) passes as public
    unless these are checked too.
    """
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.ipv4_mapped is not None:
        found.append(("IPv4-mapped", ip.ipv4_mapped))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found += [("Teredo", client), ("Teredo", server)]
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        kind = "NAT64" if ip in _NAT64 else "IPv4-compatible"
        found.append((kind, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return found


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a public unicast address (None if it is).

    An IPv6 address that embeds an IPv4 address (see ``embedded_ipv4``) must pass for
    both: ``2002:a9fe:a9fe::`` is refused as the metadata service it reaches.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    candidates: list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
    if isinstance(ip, ipaddress.IPv6Address):
        for kind, v4 in embedded_ipv4(ip):
            article = "an" if kind.startswith("IPv4") else "a"
            candidates.append((f"{article} {kind} address of {v4}, ", v4))  # what it reaches
    candidates.append(("", ip))
    for prefix, candidate in candidates:
        for label, flag in (
            ("a loopback address", candidate.is_loopback),
            ("a link-local address", candidate.is_link_local),
            ("a multicast address", candidate.is_multicast),
            ("an unspecified address", candidate.is_unspecified),
            ("a reserved address", candidate.is_reserved),
            ("a private address", candidate.is_private),
            ("not a public address", not candidate.is_global),
        ):
            if flag:
                return prefix + label
    return None


async def resolve_host(target: CallbackTarget, timeout_s: float) -> list[str]:
    """Every address of the target's host (an IP literal is its own address)."""
    try:
        return [str(ipaddress.ip_address(target.host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout_s
        )
    except TimeoutError:
        raise CallbackDnsError(
            f"callback_url host {target.host!r} did not resolve within {timeout_s:g} s"
        ) from None
    except UnicodeError:  # IDNA refuses the name (an empty label, a label over 63 chars)
        raise CallbackUrlError(
            f"callback_url host {target.host!r} is not a valid host name"
        ) from None
    except socket.gaierror as exc:
        if exc.errno in _PERMANENT_DNS_ERRORS:
            raise CallbackUrlError(
                f"callback_url host {target.host!r} does not exist (DNS: {exc.strerror})"
            ) from None
        raise CallbackDnsError(
            f"callback_url host {target.host!r} could not be resolved: {exc.strerror}"
        ) from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-AgentLink-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
