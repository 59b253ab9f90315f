"""What this project carries on an oauthlib request from one step of a token request to the next.

oauthlib's Request answers an attribute it lacks from the request's own parameters (`Request.__getattr__` looks in
the query string and the form body), so `getattr(request, "idp_auth_time", None)` returns whatever the caller sent
as `idp_auth_time` whenever this project has set nothing. State set here is read back with `carried`, which sees
only what was set on the object.
"""

from __future__ import annotations

from typing import Any


def carried(request, name: str, default: Any = None) -> Any:
    """The attribute `name` set on `request` by this project's code, or `default` (also when there is no request);
    never a parameter the caller sent."""
    return default if request is None else vars(request).get(name, default)
