"""The one interface of every mode (placement, predictor, link model): the Mode base class, the three kernel
entry points, and how a mode registers its kernel. Below policies/, links/ and sim/, which all use it.

A mode is a class; an engine binds it once: `Mode.bind(ctx)` makes the instance that holds the mode's own
state for that engine (ctx: sim.context.ModeContext, exactly what a mode may read). The instance's
`kernel_state()` is a NamedTuple its numba kernel receives; `prepare(progress)` does expensive setup once.

The engine's loop (sim.loop.run_layers) calls, per (step, layer):
    place_tasks(state, ctx, step, layer, counts_l, copies_l) -> (task_expert, task_die, task_tokens) int64
        one task per (expert, die) pair; an expert's tasks' tokens add up to its count
    predict_copies(state, ctx, step, layer, task_e, task_d, task_src) -> (want[T] bool, predicted[E] bool, pred_mode)
        want[t]: copy task t's expert to its die (the engine copies only remote reads and enforces capacity
        and eviction); pred_mode PRED_NONE (no precision/recall this layer), PRED_GIVEN (`predicted` is the
        union of the dies' predicted sets) or PRED_COPIED (the prediction is what was copied)
    layer_costs(state, ctx, step, layer, position, tasks, store, buffers) -> None
        the link model: applies the layer's copies to the store (sim.copystore; in task order, or in event
        time) setting tasks.copied, and fills buffers (sim.state.LayerBuffers) with the layer's time,
        per-die and per-link figures and the named scalars (tasks: sim.state.LayerTasks)
`state` is the mode's own NamedTuple (made by its bound Python object, see policies.base and links.base);
`ctx` is the sim.state.KernelContext. Which kernel runs is chosen by the type of `state`: a mode registers
its kernel for its state class with register_placement / register_predictor / register_link_model, so the
loop is compiled (and cached on disk by numba) once per combination of modes, with no branch on mode codes.
"""

from __future__ import annotations

PRED_NONE, PRED_GIVEN, PRED_COPIED = 0, 1, 2


class Mode:
    name = ""
    help = ""

    def __init__(self, ctx):
        self.ctx = ctx

    @classmethod
    def bind(cls, ctx) -> "Mode":
        return cls(ctx)

    def prepare(self, progress=None) -> None:
        """Expensive setup, once per engine (nothing by default). progress(label, done, total)."""

    def kernel_state(self):  # pragma: no cover - interface
        raise NotImplementedError


def place_tasks(state, ctx, step, layer, counts_l, copies_l):  # pragma: no cover - replaced by the overloads
    raise NotImplementedError("place_tasks runs only inside numba")


def predict_copies(state, ctx, step, layer, task_e, task_d, task_src):  # pragma: no cover
    raise NotImplementedError("predict_copies runs only inside numba")


def layer_costs(state, ctx, step, layer, position, tasks, store, buffers):  # pragma: no cover
    raise NotImplementedError("layer_costs runs only inside numba")


def _is(state, state_cls) -> bool:
    return getattr(state, "instance_class", None) is state_cls


def register_placement(state_cls):
    """Decorator: `kernel(state, ctx, step, layer, counts_l, copies_l)` is the placement of states of `state_cls`."""
    def register(kernel):
        from numba.extending import overload   # here: --help imports this module, not numba

        @overload(place_tasks)
        def _choose(state, ctx, step, layer, counts_l, copies_l):
            if _is(state, state_cls):
                return lambda state, ctx, step, layer, counts_l, copies_l: kernel(state, ctx, step, layer, counts_l,
                                                                                  copies_l)
        return kernel
    return register


def register_predictor(state_cls):
    """Decorator: `kernel(state, ctx, step, layer, task_e, task_d, task_src)` predicts for states of `state_cls`."""
    def register(kernel):
        from numba.extending import overload   # here: --help imports this module, not numba

        @overload(predict_copies)
        def _choose(state, ctx, step, layer, task_e, task_d, task_src):
            if _is(state, state_cls):
                return lambda state, ctx, step, layer, task_e, task_d, task_src: kernel(state, ctx, step, layer,
                                                                                        task_e, task_d, task_src)
        return kernel
    return register


def register_link_model(state_cls):
    """Decorator: `kernel(state, ctx, step, layer, position, tasks, store, buffers)` times a layer for states
    of `state_cls`."""
    def register(kernel):
        from numba.extending import overload   # here: --help imports this module, not numba

        @overload(layer_costs)
        def _choose(state, ctx, step, layer, position, tasks, store, buffers):
            if _is(state, state_cls):
                return lambda state, ctx, step, layer, position, tasks, store, buffers: kernel(
                    state, ctx, step, layer, position, tasks, store, buffers)
        return kernel
    return register
