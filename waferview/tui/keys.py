"""Every key of the live view, in one table: the app's bindings, the help screen and `replay --help` are
built from it (no textual here, so the CLI's help text can read it without loading the UI)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    keys: str             # textual key names, comma-separated
    action: str           # the app's action (with arguments)
    label: str            # the footer's word
    help: str             # one line for the help screen
    show: bool = False    # in the footer (about six keys are)
    priority: bool = False
    display: str = ""     # how the help writes the key, when not the key itself


KEYS = (
    Key("space", "toggle_pause", "Pause", "pause / resume (PAUSED shows top right)", show=True, priority=True),
    Key("n", "step", "Step", "one layer forward (while paused)", show=True),
    Key("N", "back", "Back", "one layer back (re-simulated with your mode changes)"),
    Key("g", "jump", "Jump", "jump to a step: g, its number, enter (0 = prefill)"),
    Key("0,home", "restart", "Restart", "restart from step 0 with the current modes", display="0"),
    Key("plus,equals_sign", "speed(1)", "Faster", "replay faster (layers per second, up to max)", display="+"),
    Key("minus,underscore", "speed(-1)", "Slower", "replay slower", display="-"),
    Key("p", "cycle('placement')", "Placement", "next placement: base, ep, allo (from the next layer)", show=True),
    Key("r", "cycle('predictor')", "Predictor", "next predictor: off, heatmap, oracle, lru (next layer)",
        show=True),
    Key("l", "cycle('links')", "Links", "next link model: fluid, circuit (the study's discipline; next layer)"),
    Key("P", "cycle('placement', True)", "B placement", "comparison: the second engine's placement"),
    Key("R", "cycle('predictor', True)", "B predictor", "comparison: the second engine's predictor"),
    Key("L", "cycle('links', True)", "B links", "comparison: the second engine's link model (same modes under "
        "both link models: c, then L)"),
    Key("c", "compare", "Compare", "compare: same batch, second mode, side by side, lockstep", show=True),
    Key("left", "move(-1, 0)", "", "a cursor over dies and links (starts on the bottleneck)", display="arrows"),
    Key("right", "move(1, 0)", "", ""),
    Key("up", "move(0, -1)", "", ""),
    Key("down", "move(0, 1)", "", ""),
    Key("enter", "select", "Select", "select the die or link under the cursor (or click it)"),
    Key("escape", "clear_selection", "Clear", "clear the selection and the cursor", display="esc"),
    Key("s", "summary", "Summary", "the summary so far (partial until the end of the trace)"),
    Key("question_mark", "help", "Help", "this help (escape or ? closes it)", show=True, display="?"),
    Key("q", "quit", "Quit", "quit at once, in setup too (ctrl+c also)", show=True, priority=True),
    Key("ctrl+c", "quit", "Quit", "", priority=True),
)

# keys textual provides itself, listed in the help beside ours
BUILT_IN = (("ctrl+p", "palette: modes by name (A or B; next layer or step 0)"),)


def help_rows() -> list[tuple[str, str]]:
    """(key as written, what it does) for every key with a help line, in table order."""
    rows = [(k.display or k.keys.split(",")[0], k.help) for k in KEYS if k.help]
    return rows + list(BUILT_IN)


def keys_line(width: int = 100) -> str:
    """`replay --help`'s list of every key and its footer word, wrapped to `width`."""
    import textwrap

    def word(label: str) -> str:
        return label if label.startswith("B ") else label.lower()

    parts = [f"{k.display or k.keys.split(',')[0]} {word(k.label or 'cursor')}" for k in KEYS if k.help]
    return textwrap.fill("Keys: " + ", ".join(parts + ["ctrl+p palette"]) + ".", width)
