"""The helpers behind ``time()``, ``count_exceptions()`` and
``track_inprogress()``: each is a context manager and a decorator, with
prometheus_client's class names and constructor arguments.

A decorated function keeps its signature: the wrapper is a function with the
same parameters (names, kinds, defaults, annotations), so
``inspect.signature`` and ``inspect.getfullargspec`` report the original's,
and frameworks that read parameters (FastAPI, click, pytest) see them.  An
``async def`` function gets an ``async def`` wrapper that times, counts or
tracks the awaited call.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import keyword
from timeit import default_timer
from types import CodeType, TracebackType
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, Type, TypeVar, Union

F = TypeVar("F", bound=Callable[..., Any])

_CO_VARARGS = inspect.CO_VARARGS
_CO_VARKEYWORDS = inspect.CO_VARKEYWORDS
_serial = itertools.count()


def _parameter_lists(code: CodeType) -> Tuple[str, str, List[str]]:
    """The parameter list of a function with this code object, the argument
    list that passes every parameter on, and the parameter names."""
    names = list(code.co_varnames)
    npos, nposonly, nkw = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    positional = names[:npos]
    kwonly = names[npos:npos + nkw]
    at = npos + nkw
    varargs = names[at] if code.co_flags & _CO_VARARGS else None
    at += bool(varargs)
    varkw = names[at] if code.co_flags & _CO_VARKEYWORDS else None
    params: List[str] = list(positional)
    if nposonly:
        params.insert(nposonly, "/")
    if varargs:
        params.append("*" + varargs)
    elif kwonly:
        params.append("*")
    params += kwonly
    if varkw:
        params.append("**" + varkw)
    args = list(positional) + (["*" + varargs] if varargs else []) + [f"{k}={k}" for k in kwonly]
    args += ["**" + varkw] if varkw else []
    used = positional + kwonly + [n for n in (varargs, varkw) if n]
    return ", ".join(params), ", ".join(args), used


def decorate(func: F, caller: Callable[..., Any], async_caller: Optional[Callable[..., Any]] = None) -> F:
    """A function with ``func``'s signature whose calls run
    ``caller(func, *args, **kwargs)`` (``await async_caller(...)`` for an
    ``async def`` function, when given).  Callables that are not plain
    functions (builtins, partials, callable objects) get a
    ``functools.wraps`` wrapper, whose signature ``inspect.signature`` still
    reports."""
    is_async = async_caller is not None and inspect.iscoroutinefunction(func)
    run = async_caller if is_async else caller
    code = getattr(func, "__code__", None)
    if not inspect.isfunction(func) or not isinstance(code, CodeType):
        if is_async:
            async def awrapped(*args: Any, **kwargs: Any) -> Any:
                return await run(func, *args, **kwargs)  # type: ignore[misc]
            return functools.wraps(func)(awrapped)  # type: ignore[return-value]

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            return run(func, *args, **kwargs)  # type: ignore[misc]
        return functools.wraps(func)(wrapped)  # type: ignore[return-value]
    params, args, used = _parameter_lists(code)
    # Names for the wrapped function and the caller that no parameter uses.
    fname, cname = "_func_", "_call_"
    while fname in used or cname in used:
        fname, cname = fname + "_", cname + "_"
    name = func.__name__
    if not name.isidentifier() or keyword.iskeyword(name) or name in (fname, cname):
        name = "wrapper"  # a lambda's "<lambda>"; update_wrapper restores the name
    call = f"{cname}({fname}, {args})" if args else f"{cname}({fname})"
    src = (f"async def {name}({params}):\n    return await {call}\n" if is_async
           else f"def {name}({params}):\n    return {call}\n")
    namespace: Dict[str, Any] = {fname: func, cname: run}
    exec(compile(src, f"<fastprom-decorated-{next(_serial)}>", "exec"), namespace)
    wrapper = namespace[name]
    functools.update_wrapper(wrapper, func)
    wrapper.__defaults__ = func.__defaults__
    wrapper.__kwdefaults__ = func.__kwdefaults__
    return wrapper  # type: ignore[no-any-return]


class Timer:
    """Times a block (``with metric.time() as t:``) or each call of a
    decorated function, and reports the seconds to ``metric``'s
    ``callback_name`` method (``observe``, or ``set`` for a gauge).

    ``duration`` holds the last block's seconds.  Inside the block,
    ``t.labels(...)`` picks the child of a labelled metric to report to."""

    def __init__(self, metric: Any, callback_name: str) -> None:
        self._metric = metric
        self._callback_name = callback_name
        self._start = 0.0
        self.duration: Optional[float] = None

    def _new_timer(self) -> "Timer":
        return type(self)(self._metric, self._callback_name)

    def __enter__(self) -> "Timer":
        self._start = default_timer()
        return self

    def __exit__(self, typ: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        # The clock may step back; a duration is never negative.
        self.duration = max(default_timer() - self._start, 0.0)
        getattr(self._metric, self._callback_name)(self.duration)

    def labels(self, *args: Any, **kw: Any) -> None:
        """Reports to the child of these label values (a labelled metric)."""
        self._metric = self._metric.labels(*args, **kw)

    def __call__(self, f: F) -> F:
        def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            with self._new_timer():  # one timer per call: threads and recursion
                return func(*args, **kwargs)

        async def acall(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            with self._new_timer():
                return await func(*args, **kwargs)

        return decorate(f, call, acall)


class _ContextDecorator:
    """A context manager that also decorates functions (sync or async):
    each call runs inside ``with self``."""

    def __enter__(self) -> Any:
        raise NotImplementedError

    def __exit__(self, typ: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> Any:
        raise NotImplementedError

    def __call__(self, f: F) -> F:
        def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        async def acall(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            with self:
                return await func(*args, **kwargs)

        return decorate(f, call, acall)


class ExceptionCounter(_ContextDecorator):
    """Increments ``counter`` when an exception of type ``exception`` leaves
    a block or a decorated function (the exception goes on)."""

    def __init__(self, counter: Any, exception: Union[Type[BaseException], Tuple[Type[BaseException], ...]]) -> None:
        self._counter = counter
        self._exception = exception

    def __enter__(self) -> None:
        pass

    def __exit__(self, typ: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> Literal[False]:
        if isinstance(value, self._exception):
            self._counter.inc()
        return False


class InprogressTracker(_ContextDecorator):
    """Adds 1 to ``gauge`` while a block or a decorated function runs."""

    def __init__(self, gauge: Any) -> None:
        self._gauge = gauge

    def __enter__(self) -> None:
        self._gauge.inc()

    def __exit__(self, typ: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self._gauge.dec()


__all__ = ["Timer", "ExceptionCounter", "InprogressTracker", "decorate"]
