"""The toolkit's configuration: one small dataclass, built in code or from a dict (a Django setting)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from idp_resource_server.jwks import JwksCache
from idp_resource_server.validator import DEFAULT_LEEWAY, TokenValidator


@dataclass(frozen=True)
class ResourceServerSettings:
    """What a resource server needs to validate tokens; lifetimes in seconds.

    `audience` is the identifier (or identifiers) this service answers to: a token is accepted only when its `aud`
    names one of them (RFC 9068 §4). `realm` goes into the WWW-Authenticate challenge (RFC 6750 §3).
    `exempt_paths` are path prefixes the Django middleware passes through untouched (health checks, say).
    """

    issuer: str
    audience: tuple[str, ...]
    leeway: float = DEFAULT_LEEWAY
    realm: str = "api"
    jwks_uri: str | None = None
    jwks_min_ttl: float = 60
    jwks_max_ttl: float = 86400
    jwks_default_ttl: float = 300
    jwks_min_refetch_interval: float = 10
    http_timeout: float = 5.0
    require_token: bool = False
    exempt_paths: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if isinstance(self.audience, str):
            object.__setattr__(self, "audience", (self.audience,))
        else:
            object.__setattr__(self, "audience", tuple(self.audience))
        object.__setattr__(self, "exempt_paths", tuple(self.exempt_paths))
        if not self.issuer or not self.audience:
            raise ValueError("The resource server needs `issuer` and `audience`.")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ResourceServerSettings:
        """Settings from a mapping with these field names in any case (for example a Django setting)."""
        names = {item.name for item in fields(cls)}
        lowered = {str(key).lower(): value for key, value in values.items()}
        unknown = sorted(set(lowered) - names)
        if unknown:
            raise ValueError(f"Unknown resource-server settings: {', '.join(unknown)}.")
        return cls(**lowered)

    def validator(self) -> TokenValidator:
        """A new TokenValidator (with its own JWKS cache) for these settings."""
        cache = JwksCache(
            None if self.jwks_uri else self.issuer, jwks_uri=self.jwks_uri, min_ttl=self.jwks_min_ttl,
            max_ttl=self.jwks_max_ttl, default_ttl=self.jwks_default_ttl,
            min_refetch_interval=self.jwks_min_refetch_interval, timeout=self.http_timeout,
        )
        return TokenValidator(self.issuer, self.audience, leeway=self.leeway, jwks_cache=cache)
