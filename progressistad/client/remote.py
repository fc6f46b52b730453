"""RemoteTqdm: tqdm that also reports to a progressistad daemon, without slowing the loop."""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type, TypeVar, Union

from tqdm import tqdm

from progressistad import contract
from progressistad.client import jobs, sender
from progressistad.client.events import State, log_lines, merge_metrics, task_id_for
from progressistad.client.settings import ClientSettings, auth_headers, progress_url

_bar_numbers = itertools.count(1)
_open_bars: List[Tuple[int, "sender.Track", int]] = []
"""(id of the bar, its track, id of the thread that opened it) of every reporting bar, oldest first."""
_warned: set = set()


def _read_state(bar: Any) -> State:
    return (bar.n, bar.total, getattr(bar, "desc", bar._remote_desc),
            getattr(bar, "unit", None) or bar._remote_unit, getattr(bar, "postfix", None),
            bar._remote_metrics)


def _innermost(same_thread: bool) -> Optional["sender.Track"]:
    """The track of the newest open bar of this thread, else (unless `same_thread`) of any thread."""
    thread = threading.get_ident()
    newest = None
    # No copy: other threads open and close bars meanwhile, which a reversed list iterator tolerates.
    for _, track, opener in reversed(_open_bars):
        if opener == thread:
            return track
        newest = newest or track
    return None if same_thread else newest


class RemoteTqdmMixin:
    """Adds reporting to a tqdm class; rendering and per-update work stay tqdm's own."""

    _remote_defaults: Dict[str, Any] = {}
    _is_progressista_remote = True

    def __init__(self, iterable: Any = None, *args: Any, server_url: Optional[str] = None,
                 task_id: Optional[str] = None, push_every: Optional[float] = None,
                 request_timeout: Optional[float] = None, meta: Optional[dict] = None,
                 headers: Optional[Dict[str, str]] = None, **kwargs: Any) -> None:
        self._remote_track = None
        self._remote_status = contract.CLOSE
        self._remote_final_meta: Optional[dict] = None
        self._remote_metrics: Dict[str, float] = {}
        self._remote_number = next(_bar_numbers)
        options = self._remote_options(server_url=server_url, task_id=task_id, push_every=push_every,
                                       request_timeout=request_timeout, meta=meta, headers=headers)
        if "unit" not in kwargs and self._remote_defaults.get("unit"):
            kwargs["unit"] = self._remote_defaults["unit"]
        self._remote_desc = kwargs.get("desc") or (args[0] if args and isinstance(args[0], str) else "")
        self._remote_unit = kwargs.get("unit", "it")
        super().__init__(iterable, *args, **kwargs)  # type: ignore[call-arg]
        if self.disable:
            self.update = self._count_update  # type: ignore[method-assign]
        self._remote_start(**options)

    def _remote_options(self, **given: Any) -> Dict[str, Any]:
        defaults = self._remote_defaults
        return {k: (v if v is not None else defaults.get(k)) for k, v in given.items()}

    def _remote_start(self, server_url: Optional[str], task_id: Optional[str],
                      push_every: Optional[float], request_timeout: Optional[float],
                      meta: Optional[dict], headers: Optional[Dict[str, str]]) -> None:
        try:
            settings = ClientSettings.from_env()
            url = progress_url(server_url) if server_url else settings.server_url
            sent_headers = {**auth_headers(settings.api_token), **(headers or {})}
            sent_meta = self._remote_meta(meta, settings, given_id=task_id is not None)
            job = (sent_meta or {}).get("job")
            sent_id = task_id_for(task_id) if task_id is not None else jobs.task_id(
                job if isinstance(job, str) and job else self._remote_job(None),
                self._remote_number)
            self._remote_track = sender.get_sender().track(
                self, _read_state, sent_id,
                url, sent_headers, float(request_timeout or settings.request_timeout),
                float(push_every or settings.push_interval), sent_meta)
        except Exception as error:  # a bad option must not break the user's loop
            if str(error) not in _warned:
                _warned.add(str(error))
                sender.log.warning("progressista: bars are not reported: %s", error)
            return
        if self._remote_track is not None:
            _open_bars.append((id(self), self._remote_track, threading.get_ident()))

    def _remote_meta(self, meta: Optional[dict], settings: ClientSettings,
                     given_id: bool) -> Optional[dict]:
        """`meta` plus the parent (the innermost open bar, else the wrapping command) and the
        job: the default one, unless the user named the task (its id is then the job) outside
        a wrapped command."""
        sent = copy.deepcopy(meta) if meta else {}
        parent = _innermost(same_thread=True)
        parent_id = parent.task_id if parent is not None else settings.parent_id
        if parent_id and "parent_id" not in sent:
            sent["parent_id"] = parent_id
        if "job" not in sent and (settings.job or not given_id):
            sent["job"] = self._remote_job(settings.job)
        return sent or None

    def _remote_job(self, program: Optional[str]) -> str:
        """The default job: the wrapped command's, else this program's, with the description."""
        return jobs.bar_job(program or jobs.program(), self._remote_desc, self._remote_number)

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        """tqdm's set_postfix; the text goes to the task's `postfix`, the finite numbers to `metrics`."""
        super().set_postfix(ordered_dict, refresh, **kwargs)  # type: ignore[misc]
        try:
            given = list(dict(ordered_dict).items()) if ordered_dict is not None else []
            self._remote_metrics = merge_metrics(self._remote_metrics,
                                                 given + sorted(kwargs.items()))
        except Exception:  # an odd key or value must not break the user's loop
            pass

    def log(self, text: Union[str, Iterable[str]]) -> None:
        """Append `text` (split on newlines), or each of a list of lines, to the task's log tail."""
        track = self._remote_track
        if track is not None:
            _send_log(track, text)

    @classmethod
    def write(cls, s: str, file: Any = None, end: str = "\n", nolock: bool = False) -> None:
        """tqdm.write, with the text also sent to the log tail of the innermost open bar."""
        super().write(s, file=file, end=end, nolock=nolock)  # type: ignore[misc]
        track = _innermost(same_thread=False)
        if track is not None:
            _send_log(track, s)

    def _count_update(self, n: float = 1) -> None:
        """update() of a disabled bar: tqdm would not count, the daemon still wants the numbers."""
        self.n += n

    def __iter__(self):  # type: ignore[override]
        if self.disable and self._remote_track is not None:
            return self._count_iter()
        return super().__iter__()  # type: ignore[misc]

    def _count_iter(self):
        n = self.n
        try:
            for obj in self.iterable:
                yield obj
                n += 1
                self.n = n
        finally:
            self.n = n
            self.close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        if exc_type is not None:
            self._remote_status = contract.ERROR
        return super().__exit__(exc_type, exc, tb)  # type: ignore[misc]

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            self._remote_finish()

    def _remote_finish(self) -> None:
        track, self._remote_track = getattr(self, "_remote_track", None), None
        if track is None:
            return
        try:
            self._remote_unlist()
            reporter = sender.get_sender()
            reporter.finish(track, self._remote_status, _read_state(self), self._remote_final_meta)
            reporter.settle_finished(track)
        except Exception:  # e.g. during interpreter shutdown
            pass

    def remote_fail(self) -> None:
        """Close this bar and report the task as failed (status `error`)."""
        self._remote_end(contract.ERROR)

    def _remote_end(self, status: str, meta: Optional[dict] = None) -> None:
        """Close this bar, reporting `status` with `meta` added to the task's meta."""
        self._remote_status = status
        self._remote_final_meta = meta
        self.close()

    def _remote_touch(self) -> None:
        """Report the state again at the next push even if unchanged (a quiet task is alive)."""
        track = self._remote_track
        if track is not None:
            sender.get_sender().touch(track)

    def remote_detach(self) -> None:
        """Stop reporting this bar without sending a final event (it goes stale on the dashboard)."""
        track, self._remote_track = self._remote_track, None
        if track is not None:
            self._remote_unlist()
            sender.get_sender().forget(track)

    def _remote_unlist(self) -> None:
        for entry in [entry for entry in _open_bars if entry[0] == id(self)]:
            try:
                _open_bars.remove(entry)  # one atomic step: other threads may be adding bars
            except ValueError:
                pass


def _send_log(track: "sender.Track", text: Union[str, Iterable[str]]) -> None:
    try:
        sender.get_sender().log(track, log_lines(text))
    except Exception:  # logging must never break the user's program
        pass


TqdmClass = TypeVar("TqdmClass", bound=type)
_remote_classes: Dict[type, type] = {}


def make_remote_tqdm(base: Type[Any], **defaults: Any) -> Type[Any]:
    """A remote-reporting subclass of `base` (cached per base when no defaults are given)."""
    if getattr(base, "_is_progressista_remote", False):
        return base
    if not defaults and base in _remote_classes:
        return _remote_classes[base]
    cls = type(f"Remote{base.__name__}", (RemoteTqdmMixin, base), {
        "__module__": __name__,
        "__doc__": base.__doc__,
        "_remote_defaults": dict(defaults),
    })
    if not defaults:
        _remote_classes[base] = cls
    return cls


class RemoteTqdm(RemoteTqdmMixin, tqdm):
    """tqdm that also reports to progressistad; takes every tqdm argument plus the remote options."""


_remote_classes[tqdm] = RemoteTqdm
