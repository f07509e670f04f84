"""The route template of a request, read from what the router left in the scope.

Starlette's router stores the route it matched in ``scope["route"]`` and
mounts extend ``scope["root_path"]``; FastAPI's included routers leave the
full template in ``scope["fastapi"]["effective_route_context"]``.  So once
the app has run, the template is a few dict lookups away: nothing is matched
again.  Only mounts (which leave the concrete path of their prefix) are
resolved against the app's routes, once per distinct prefix.
"""
from __future__ import annotations

from typing import Any, Dict, List, MutableMapping, Optional, Tuple

_CACHE_LIMIT = 4096


def _route_path(route: Any, scope: MutableMapping[str, Any]) -> Optional[str]:
    fa = scope.get("fastapi")
    if isinstance(fa, dict):
        ctx = fa.get("effective_route_context")
        if ctx is not None and getattr(ctx, "original_route", None) is route:
            path = getattr(ctx, "path", None)
            if isinstance(path, str):
                return path
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _mount_like(route: Any) -> bool:
    try:
        from starlette.routing import Mount
    except ImportError:  # pragma: no cover - no Starlette, no mounts
        return False
    return isinstance(route, Mount)


def _mount_template(routes: List[Any], concrete: str) -> str:
    """Turns the concrete prefix a chain of mounts matched (``/t/9``) into
    their templates (``/t/{tid}``).  Unknown prefixes are returned as they are."""
    out = []
    rest = concrete
    while rest:
        for route in routes:
            if not _mount_like(route):
                continue
            m = route.path_regex.match(rest + "/")
            if not m:
                continue
            tail = "/" + m.groupdict().get("path", "")
            consumed = len(rest) + 1 - len(tail)
            if consumed <= 0:
                continue
            out.append(route.path)
            rest = rest[consumed:]
            routes = list(getattr(route, "routes", []) or [])
            break
        else:
            out.append(rest)
            break
    return "".join(out)


def route_key(scope: MutableMapping[str, Any]) -> Any:
    """What identifies the matched route's template: FastAPI's effective
    route context when it has one for the route (a router included twice has
    one per inclusion), else the route itself; None when no route matched."""
    route = scope.get("route")
    if route is None:
        return None
    fa = scope.get("fastapi")
    if fa is not None:
        ctx = fa.get("effective_route_context")
        if ctx is not None and getattr(ctx, "original_route", None) is route:
            return ctx
    return route


class RouteResolver:
    """Finds the template of a handled request from its scope.

    It owns the route-template caches; template() fills them and nothing
    invalidates them, because a route object's template never changes.
    Routes need not be hashable (FastAPI's are not), so entries are keyed
    by id and hold the route key itself, which guards against a reused id:
    an entry whose key is not the request's route key is a miss.

    - ``_cache``: (id(route key), mount prefix, id(app)) -> (route key, template).
    - ``known``: id(route key) -> (route key, template) for routes matched
      without a mount prefix; the middleware's inline path reads it directly.
    """

    def __init__(self) -> None:
        self._cache: Dict[Tuple[int, str, int], Tuple[Any, str]] = {}
        self.known: Dict[int, Tuple[Any, str]] = {}

    def template(self, scope: MutableMapping[str, Any], root0: str, app0: Any,
                 include_root_path: bool = False) -> Optional[str]:
        """The route template, or None when no route matched.

        ``root0`` and ``app0`` are ``scope["root_path"]`` and ``scope["app"]``
        as they were before the app ran.
        """
        route = scope.get("route")
        if route is None:
            return None
        root = scope.get("root_path") or ""
        prefix = root[len(root0):] if root != root0 and root.startswith(root0) else ""
        rkey = route_key(scope)
        key = (id(rkey), prefix, id(app0) if prefix else 0)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is rkey:
            tmpl = hit[1]
        else:
            resolved = self._resolve(route, scope, prefix, app0)
            if resolved is None:
                return None
            tmpl = resolved
            # Static prefixes are few; mounts with parameters would grow the
            # cache without bound, so it stops growing at a limit.
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = (rkey, tmpl)
        if not prefix and len(self.known) < _CACHE_LIMIT:
            self.known[id(rkey)] = (rkey, tmpl)
        return root0 + tmpl if include_root_path else tmpl

    def _resolve(self, route: Any, scope: MutableMapping[str, Any], prefix: str, app0: Any) -> Optional[str]:
        mount = ""
        if prefix:
            mount = _mount_template(list(getattr(app0, "routes", []) or []), prefix)
        if _mount_like(route):
            # A mounted app that is not a router: the mount is the handler.
            return mount or getattr(route, "path", None)
        path = _route_path(route, scope)
        if path is None:
            return None
        return mount + path


def match_template(app: Any, scope: MutableMapping[str, Any]) -> Optional[str]:
    """The template of a request that has not been routed yet, by matching
    the app's routes (used only where the handler is needed up front)."""
    try:
        from starlette.routing import Match
    except ImportError:  # pragma: no cover
        return None
    routes = list(getattr(app, "routes", []) or [])
    scope = dict(scope)
    prefix = ""
    partial = None
    while True:
        found = None
        for route in routes:
            matches = getattr(route, "matches", None)
            if matches is None:
                continue
            match, child = matches(scope)
            if match == Match.FULL:
                found = (route, child)
                break
            if match == Match.PARTIAL and partial is None:
                partial = prefix + (getattr(route, "path", "") or "")
        if found is None:
            return partial
        route, child = found
        scope.update(child)
        sub = getattr(route, "routes", None)
        if _mount_like(route) and sub:
            prefix += route.path
            routes = list(sub)
            continue
        ctx = child.get("route") if isinstance(child, dict) else None
        path = _route_path(ctx if ctx is not None else route, scope)
        return prefix + path if path is not None else None
