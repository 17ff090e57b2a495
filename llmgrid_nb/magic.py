"""``%llmgrid`` / ``%%llmgrid``: one line in a notebook runs the grid.

Argument parsing uses IPython's ``magic_arguments`` (quoting, ``UsageError``); user errors are
one-line UsageErrors, never tracebacks from our internals.

A follow-up continues a grid's conversation: ``-c`` (``--continue``) takes no value and continues
``_llmgrid``; ``-C NAME`` (``--continue-from NAME``) always takes one, the variable holding the
Grid. Neither can swallow the first word of a bare prompt (``%llmgrid -c why is that?``), and a
name that holds no Grid is an error, never a prompt.
"""

from __future__ import annotations

import json
import shlex
import string
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.utils.process import arg_split

from .errors import LLMGridError
from .grid import Grid
from .sources.base import Source

__all__ = ["LLMGridMagics", "interpolate", "load_ipython_extension", "parse_params", "unload_ipython_extension"]


def interpolate(prompt: str, namespace: Mapping[str, Any]) -> str:
    """Fill ``{name}`` (and ``{name.attr}``, ``{name[0]}``) from the notebook; ``{{`` escapes."""
    try:
        return string.Formatter().vformat(prompt, (), _Namespace(namespace))
    except KeyError as exc:
        raise UsageError(f"{{{exc.args[0]}}} in the prompt is not defined in the notebook "
                         "(write {{ and }} for literal braces)") from None
    except (ValueError, IndexError, AttributeError) as exc:
        raise UsageError(f"cannot fill the prompt's placeholders: {exc} (write {{{{ and }}}} for literal braces)") from None


class _Namespace(dict):  # type: ignore[type-arg]
    def __init__(self, ns: Mapping[str, Any]) -> None:
        super().__init__()
        self._ns = ns

    def __missing__(self, key: str) -> Any:
        if key in self._ns:
            return self._ns[key]
        raise KeyError(key)


def _parse(parser: Any, line: str) -> Any:
    """Shell-style split (quotes group words); a lone apostrophe ("What's SSE?") is kept as text."""
    try:
        argv = shlex.split(line)
    except ValueError:
        argv = arg_split(line, posix=False)
    return parser.parse_args(argv)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse as JSON (numbers, booleans, lists)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p/--param takes key=value, got {item!r}")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
    return params


def _sources(models: str | None, api_base: str | None, api_key_env: str | None) -> list[str | Source] | None:
    from .sources.litellm import LiteLLM
    from .sources.openai_sse import OpenAICompatible
    from .sources.resolve import resolve_source

    if models is None:
        if api_base:
            raise UsageError("--api-base needs -m/--models (the model names that server serves)")
        return None
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise UsageError("-m/--models is empty")
    key_env = [api_key_env] if api_key_env else []
    out: list[str | Source] = []
    for name in names:
        if api_base and not name.startswith(("sim/", "ollama/")) and "@" not in name:
            if name.startswith("litellm:"):
                out.append(LiteLLM(name[len("litellm:"):], api_base=api_base, key_env=key_env, name=name))
            else:
                out.append(OpenAICompatible(name, api_base, key_env=key_env, name=name))
            continue
        src = resolve_source(name)
        if key_env and hasattr(src, "key_env"):  # every source that sends a key names its variables
            src.key_env = tuple(key_env)
        out.append(src)
    return out


def _run_options(args: Any) -> dict[str, Any]:
    """The request options given on the line (only those given: a follow-up keeps the others)."""
    options: dict[str, Any] = {}
    for key in ("system", "temperature", "max_tokens", "timeout"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.budget is not None:
        options["budget_usd"] = args.budget
    if args.blind:
        options["blind"] = True
    return options


@magics_class
class LLMGridMagics(Magics):
    """The ``%llmgrid`` line magic and ``%%llmgrid`` cell magic."""

    @no_var_expand
    @magic_arguments()
    @argument("-m", "--models", help="comma-separated models, e.g. gpt-4o-mini,ollama/llama3.2,sim/steady "
                                     "(default: LLMGRID_MODELS, else simulator profiles)")
    @argument("--system", help="system prompt")
    @argument("-t", "--temperature", type=float, help="sampling temperature")
    @argument("--max-tokens", type=int, help="maximum output tokens per model")
    @argument("--timeout", type=float, help="total seconds allowed per stream (default 300)")
    @argument("--budget", type=float, metavar="USD",
              help="refuse to start a run whose worst case (every pane's max tokens at its price) costs more")
    @argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
              help="extra request parameter passed to the provider (repeatable; JSON values)")
    @argument("--api-base", help="base URL of an OpenAI-compatible server or proxy for the models")
    @argument("--api-key-env", metavar="VAR", help="environment variable holding the API key to send")
    @argument("--brave", action="store_true",
              help="add the Brave Search knowledge aggregator pane (simulated without BRAVE_API_KEY)")
    @argument("--synthesize", metavar="MODEL", help="add the master view: MODEL reconciles the answers")
    @argument("--synthesize-each", action="store_true",
              help="with --synthesize: add a reconciling section as each pane finishes, not only at the end")
    @argument("--blind", action="store_true",
              help='label the model panes "Model A", "Model B"... in shuffled order until you vote (grid.vote)')
    @argument("--background", action="store_true", help="return at once; the Stop button stays live")
    @argument("--no-widget", action="store_true", help="plain text output (terminals, exports)")
    @argument("-o", "--out", metavar="NAME", help="also bind the Grid to this variable (always: _llmgrid)")
    @argument("-c", "--continue", dest="continue_last", action="store_true",
              help="ask a follow-up: continue the conversation of _llmgrid (the last grid), every pane its own")
    @argument("-C", "--continue-from", metavar="NAME",
              help="ask a follow-up in the conversation of the Grid held by variable NAME (e.g. an -o name)")
    @argument("prompt", nargs="*", help="the prompt (quoted or bare); {var} is filled from the notebook")
    @line_cell_magic
    def llmgrid(self, line: str, cell: str | None = None) -> None:
        """Stream a prompt to several models side by side: %llmgrid [options] prompt."""
        try:
            tokens = line.split()
            if "-h" in tokens or "--help" in tokens:
                print(self.llmgrid.parser.format_help())  # type: ignore[attr-defined]
                return None
            args = _parse(self.llmgrid.parser, line)  # type: ignore[attr-defined]
            prompt = cell if cell is not None else " ".join(args.prompt)
            if cell is not None and args.prompt:
                raise UsageError("with %%llmgrid the prompt is the cell body; the first line takes options only")
            if not prompt.strip():
                raise UsageError('no prompt: %llmgrid "Explain SSE" -m sim/fast,sim/slow')
            prompt = interpolate(prompt, self.shell.user_ns if self.shell else {})
            if args.out is not None and not args.out.isidentifier():
                raise UsageError(f"-o/--out takes a variable name, got {args.out!r}")
            if args.continue_last or args.continue_from is not None:
                grid = self._follow_up(prompt, args)
            else:
                grid = self._start(prompt, _sources(args.models, args.api_base, args.api_key_env),
                                   self._options(args), args)
        except LLMGridError as exc:
            raise UsageError(str(exc)) from None
        return self._finish(grid, args)

    @staticmethod
    def _options(args: Any) -> dict[str, Any]:
        """A first question's options from its line."""
        options: dict[str, Any] = {"params": parse_params(args.param)}
        if args.brave:
            options["brave"] = True
        if args.synthesize_each and not args.synthesize:
            raise UsageError("--synthesize-each goes with --synthesize MODEL")
        if args.synthesize:
            from .sources.master import MasterSynthesis

            options["synthesize"] = MasterSynthesis(args.synthesize, incremental=args.synthesize_each)
        return {**options, **_run_options(args)}

    def _follow_up(self, prompt: str, args: Any) -> Grid:
        """The next turn of the grid ``-c`` / ``-C NAME`` names, with the options given on this line."""
        from .api import start_follow_up
        from .terminal_view import live_view_sinks

        if args.continue_last and args.continue_from is not None:
            raise UsageError("-c continues _llmgrid and -C NAME the grid in NAME: give one of them")
        for given, flag in ((args.models, "-m/--models"), (args.api_base, "--api-base"),
                            (args.api_key_env, "--api-key-env")):
            if given is not None:
                raise UsageError(f"a follow-up continues its grid's own models: {flag} cannot change them")
        grid = self._grid_to_continue(args.continue_from or "_llmgrid", named=args.continue_from is not None)
        options = _run_options(args)
        if args.param:  # added to the conversation's parameters, not instead of them
            before = grid._follow_up.settings.get("params") if grid._follow_up is not None else None
            options["params"] = {**(before or {}), **parse_params(args.param)}
        if args.brave:
            options["brave"] = True
        if args.synthesize:
            from .sources.master import MasterSynthesis

            options["synthesize"] = MasterSynthesis(args.synthesize, incremental=args.synthesize_each)
        elif args.synthesize_each:
            raise UsageError("--synthesize-each goes with --synthesize MODEL")
        options["widget"] = False if args.no_widget else None
        views = live_view_sinks(widget=options["widget"], background=args.background)
        if views:
            before = grid._follow_up.settings.get("sinks", ()) if grid._follow_up is not None else ()
            options["sinks"] = (*before, *views)
        return start_follow_up(grid, prompt, options, stoppable=args.background)

    def _grid_to_continue(self, name: str, *, named: bool) -> Grid:
        ns = self.shell.user_ns if self.shell else {}
        if not name.isidentifier():
            raise UsageError(f"-C/--continue-from takes the name of a variable holding a Grid, got {name!r}")
        if name not in ns:
            if named:
                raise UsageError(f"no variable named {name!r} to continue: bind a grid with -o {name} (or "
                                 f"{name} = lg.run(...)) first")
            raise UsageError('no grid to continue: run one first (%llmgrid "question" -m ...), or -C NAME')
        grid = ns[name]
        if not isinstance(grid, Grid):
            raise UsageError(f"{name} is not a Grid (it is of type {type(grid).__name__}): nothing to continue")
        return grid

    def _start(self, prompt: str, models: Any, options: dict[str, Any], args: Any) -> Grid:
        from .api import RUN_DEFAULTS, _start
        from .terminal_view import live_view_sinks

        # The widget where a front end renders it (frontend.py); elsewhere text, live in a terminal.
        settings = {**RUN_DEFAULTS, **options, "widget": False if args.no_widget else None}
        settings["sinks"] = live_view_sinks(widget=settings["widget"], background=args.background)
        return _start(prompt, models, **settings, stoppable=args.background)

    def _finish(self, grid: Grid, args: Any) -> None:
        ns = self.shell.user_ns if self.shell else {}
        ns["_llmgrid"] = grid
        if args.out:
            ns[args.out] = grid
        if args.background:
            return None
        try:
            grid.wait()
        except KeyboardInterrupt:
            print(f"Interrupted: every stream was cancelled; partial results are in "
                  f"{args.out or '_llmgrid'}.")
            raise
        if grid.widget is None:
            from .report import text_report
            from .terminal_view import plain_text

            print(plain_text(text_report(grid.record(as_shown=True))))  # no control character of an answer reaches the terminal
        return None


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmgrid_nb``: register the magics."""
    ipython.register_magics(LLMGridMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext llmgrid_nb``: remove the magics."""
    magics = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        magics[kind].pop("llmgrid", None)

