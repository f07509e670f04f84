"""The route template of a request, read from what the router left in the scope.

Starlette's router stores the route it matched in ``scope["route"]`` and
mounts extend ``scope["root_path"]``; FastAPI's included routers leave the
full template in ``scope["fastapi"]["effective_route_context"]``.  So once
the app has run, the template is a few dict lookups away: nothing is matched
again.  Only mounts (which leave the concrete path of their prefix) are
resolved against the app's routes, once per distinct prefix.

Where the template is needed before the app runs (the in-progress gauge
with labels), or for a request that matched no route (is it a
trailing-slash redirect, and to which route?), :func:`resolve` matches the
app's routes as Starlette's router does.  :func:`get_route_name` and
:func:`_get_route_name` are prometheus-fastapi-instrumentator's
``routing`` functions of those names, with its 8.1 semantics.
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
        for route in _candidates(routes):
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
                 root_prefix: str = "") -> Optional[str]:
        """The route template, or None when no route matched.

        ``root0`` and ``app0`` are ``scope["root_path"]`` and ``scope["app"]``
        as they were before the app ran; ``root_prefix`` is prepended to the
        template (see :func:`root_prefix`).
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
        return root_prefix + tmpl if root_prefix else tmpl

    def _resolve(self, route: Any, scope: MutableMapping[str, Any], prefix: str, app0: Any) -> Optional[str]:
        mount = ""
        if prefix:
            mount = _mount_template(list(getattr(app0, "routes", []) or []), prefix)
        if _mount_like(route):
            # Left in the scope by the router outside: a mounted app with
            # routes of its own matched none of them (its router would have
            # put its route there), so no route matched; a mounted app
            # without routes is the handler itself.
            if route.routes:
                return None
            return mount or getattr(route, "path", None)
        path = _route_path(route, scope)
        if path is None:
            return None
        return mount + path


def _candidates(routes: List[Any]) -> List[Any]:
    """The routes a request can match, in order.  FastAPI (>= 0.116) keeps
    an included router as one ``_IncludedRouter`` entry, which matches no
    request itself; its ``effective_route_contexts()`` are its routes with
    the prefixes applied (for Starlette routes and mounts, the prefixed
    Starlette route), nested inclusions included."""
    out: List[Any] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if not callable(contexts):
            out.append(route)
            continue
        for ctx in contexts():
            inner = getattr(ctx, "starlette_route", None)
            out.append(ctx if inner is None else inner)
    return out


def resolve(scope: MutableMapping[str, Any], routes: List[Any]) -> Optional[str]:
    """The template of the route among ``routes`` that a not yet routed
    request matches, as Starlette's router would choose it: the first full
    match, else the first partial one (a method not allowed); None when none.

    A mount adds its path to the template of the route matched inside it; a
    mounted app without routes of its own is its mount's path; a mount none
    of whose routes match is no match."""
    try:
        from starlette.routing import Match
    except ImportError:  # pragma: no cover - no Starlette, no routes
        return None
    fallback: Optional[str] = None
    for route in _candidates(routes):
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        if match == Match.NONE:
            continue
        name: Optional[str]
        if _mount_like(route):
            inner_routes = list(route.routes or [])
            if inner_routes:
                inner = resolve({**scope, **child}, inner_routes)
                name = None if inner is None else route.path + inner
            else:
                name = route.path
        else:
            path = getattr(route, "path", None)
            name = path if isinstance(path, str) else None
        if name is None:
            continue
        if match == Match.FULL:
            return name
        if fallback is None:
            fallback = name
    return fallback


def match_template(app: Any, scope: MutableMapping[str, Any]) -> Optional[str]:
    """The template of a request that has not been routed yet, by matching
    the app's routes (used only where the handler is needed up front)."""
    routes = list(getattr(app, "routes", None) or [])
    return resolve(scope, routes) if routes else None


def redirect_target(app: Any, scope: MutableMapping[str, Any]) -> Optional[str]:
    """For a request that matched no route, the template of the route the
    app's router redirects it to by adding or removing the trailing slash
    (``redirect_slashes``, on by default); None when it is not redirected.
    ``scope`` must be as it was before the app ran."""
    router = getattr(app, "router", None)
    if router is None or not getattr(router, "redirect_slashes", False):
        return None
    path = scope.get("path", "")
    toggled = path[:-1] if path.endswith("/") else path + "/"
    if not toggled or toggled == path:
        return None
    routes = list(getattr(app, "routes", None) or [])
    return resolve({**scope, "path": toggled}, routes) if routes else None


def app_root_path(app: Any) -> str:
    """The ``root_path`` an app was created with (FastAPI's ``root_path=``),
    without its trailing slash."""
    return (getattr(app, "root_path", "") or "").rstrip("/")


def root_prefix(app: Any, scope: MutableMapping[str, Any]) -> str:
    """What ``should_include_root_path`` prepends to a template, read before
    the app runs.  The app's own ``root_path`` (FastAPI's ``root_path=``),
    as prometheus-fastapi-instrumentator 8.1 takes it; for an app without
    one, the root path its server was given (``uvicorn --root-path``, what
    FastAPI now recommends), which PFI leaves out; and for a mounted app
    without one, nothing: as in PFI, its templates are relative to it, the
    mount's path and the parent's root path left out.  A scope that went
    through a Starlette mount carries ``app_root_path``."""
    own = app_root_path(app)
    if own or "app_root_path" in scope:
        return own
    return str(scope.get("root_path") or "").rstrip("/")


def get_route_name(request: Any, should_include_root_path: bool = False) -> Optional[str]:
    """prometheus-fastapi-instrumentator's ``routing.get_route_name``: the
    template of a request (a Starlette ``Request`` or ``HTTPConnection``)
    not yet routed, e.g. ``/items/{item_id}``; for a request the router
    answers with a trailing-slash redirect, its path; else None.

    With ``should_include_root_path``, a template is prefixed with the app's
    root path (see :func:`root_prefix`).  An instrumented mounted app
    resolves relative to itself.
    """
    scope = request.scope
    app = scope.get("app")
    name = match_template(app, scope)
    if name is not None:
        return root_prefix(app, scope) + name if should_include_root_path else name
    if redirect_target(app, scope) is not None:
        return str(scope.get("path", ""))
    return None


def _get_route_name(scope: MutableMapping[str, Any], routes: List[Any]) -> Optional[str]:
    """prometheus-fastapi-instrumentator's private helper of the same name
    (its test suite calls it): :func:`resolve`."""
    return resolve(scope, routes)
