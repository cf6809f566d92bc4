"""The few places where Keras backends differ: the loop, the train/test steps, compiled calls.

Everything else in keras-cvae is `keras.ops`. TensorFlow and JAX differ in three ways that
matter to a recurrent video model, and each is handled here once:

- Loops. `keras.ops.scan` on TensorFlow sets no `maximum_iterations` (XLA cannot
  differentiate such a loop) and stacks only outputs shaped like its carry. A JAX loop body
  is a pure function, so a layer that assigns a variable inside it (BatchNorm's moving
  statistics in training mode) must have those values carried through the loop.
- Training. TensorFlow differentiates stateful variables under a `GradientTape`; JAX is
  stateless: the trainer hands the step the variables' values and wants new values back.
- Compiled inference. `tf.function` of the model versus `jax.jit` of a function of the
  variable values (jitting the stateful model would bake its weights in as constants).
- Data parallelism. JAX's `keras.distribution.DataParallel` is one program over the
  sharded global batch, on the devices of one process or of several (`distributed`).
  TensorFlow's `MirroredStrategy` runs one copy of the step per device of one process on
  its share of the batch; what the single-device step computes over the whole batch is
  synchronised across the copies (see `data_parallel`). Either way a step equals the
  single-device step over the global batch.
"""

import contextlib
import functools

import keras
from keras import ops

# Keras exports no public way to read a variable's value without mixed-precision autocast.
from keras.src.backend import AutocastScope

SUPPORTED = ("tensorflow", "jax")


def current_backend():
    """The Keras backend's name, checked to be one keras-cvae runs on."""
    name = keras.backend.backend()
    if name not in SUPPORTED:
        raise RuntimeError(
            f"keras-cvae runs on the {' and '.join(SUPPORTED)} backends, not {name!r}; "
            "set KERAS_BACKEND"
        )
    return name


def _flatten(structure):
    return keras.tree.flatten(structure)


def _pack(structure, flat):
    return keras.tree.pack_sequence_as(structure, flat)


# ---------------------------------------------------------------------- the loop
def scan(step, init, xs, keep, layer, synchronised=False):
    """Runs `carry = step(carry, x)` over the leading axis of `xs` in one symbolic loop.

    The loop body is traced once, so a graph (and its XLA compile) holds the layers of the
    step once whatever the number of steps, and the loop is differentiable on both backends.
    A step that all-reduces across TensorFlow replicas is unrolled instead: TensorFlow
    cannot synchronise replicas inside a loop. On JAX without an accelerator, loops of at
    most `MAX_UNROLLED_STEPS` steps are unrolled when compiled (see `_jax_unroll`).

    Args:
        step: Function (carry, x) -> new carry, over nested structures of tensors. The new
            carry must have the structure, dtypes and shapes of `init`.
        init: The initial carry.
        xs: Nested structure of tensors [steps, ...] (the number of steps is static).
        keep: Function of a carry returning the part of it to stack over steps.
        layer: The layer (or model) whose variables `step` reads and may assign.
        synchronised: Whether `step` synchronises replicas when there are several (BatchNorm
            in training mode, see `layers.blocks.batch_norm`).

    Returns:
        (final carry, `keep(carry)` after every step, stacked on a new leading axis).
    """
    if current_backend() == "jax":
        return _jax_scan(step, init, xs, keep, layer)
    if synchronised and replicas() > 1:
        return _unrolled_scan(step, init, xs, keep)
    return _tf_scan(step, init, xs, keep)


def _unrolled_scan(step, init, xs, keep):
    flat_xs = _flatten(xs)
    carry, kept = init, []
    for index in range(int(flat_xs[0].shape[0])):
        carry = step(carry, _pack(xs, [x[index] for x in flat_xs]))
        kept.append(_flatten(keep(carry)))
    return carry, _pack(keep(init), [ops.stack(ys, axis=0) for ys in zip(*kept)])


def _tf_scan(step, init, xs, keep):
    import tensorflow as tf

    flat_xs = _flatten(xs)
    steps = int(flat_xs[0].shape[0])
    xs_arrays = [
        tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x) for x in flat_xs
    ]
    kept_init = keep(init)
    ys_arrays = [
        tf.TensorArray(y.dtype, size=steps, element_shape=y.shape) for y in _flatten(kept_init)
    ]

    def body(index, carry, ys_arrays):
        x = _pack(xs, [array.read(index) for array in xs_arrays])
        carry = step(carry, x)
        ys = _flatten(keep(carry))
        return index + 1, carry, [array.write(index, y) for array, y in zip(ys_arrays, ys)]

    _, carry, ys_arrays = tf.while_loop(
        lambda index, *_: index < steps,
        body,
        (tf.constant(0), init, ys_arrays),
        maximum_iterations=steps,  # XLA differentiates only loops with a known trip count.
    )
    return carry, _pack(kept_init, [array.stack() for array in ys_arrays])


# XLA's CPU code runs the convolutions of a loop's body several times slower than the same
# ops unrolled (the small SVG's free-running train step, batch 16: 17.0 s looped, 12.4 s
# with 4 steps per iteration, 2.1 s unrolled), so on a CPU short loops (training windows,
# 2 -> 10 rollouts) are unrolled, for about twice their compile time; long rollouts (the
# pose model's hundreds of frames) stay loops, whose compile does not grow with their length.
MAX_UNROLLED_STEPS = 32


def _jax_unroll(steps: int) -> int:
    """How many steps of a JAX scan of `steps` steps one loop iteration runs.

    Args:
        steps: The scan's length.
    """
    import jax

    if jax.default_backend() == "cpu" and steps <= MAX_UNROLLED_STEPS:
        return max(steps, 1)
    return 1


def _uncast_values(variables):
    """The variables' current values (in a stateless scope: its values), never autocast."""
    with AutocastScope(None):
        return [variable.value for variable in variables]


def _jax_scan(step, init, xs, keep, layer):
    import jax

    # Weights are read once outside the loop (closed over: under jit they are the traced
    # values of the enclosing step); the non-trainable variables are carried so that
    # assignments inside the body survive it.
    weights, state = layer.trainable_variables, layer.non_trainable_variables
    weight_values = _uncast_values(weights)

    def body(carry_and_state, x):
        carry, state_values = carry_and_state
        mapping = [*zip(weights, weight_values), *zip(state, state_values)]
        # Built with autocast off: under mixed precision a variable's `dtype` is the compute
        # dtype, and the mapped values would be cast to it (float16 statistics).
        with AutocastScope(None):
            scope = keras.StatelessScope(state_mapping=mapping)
        with scope:
            carry = step(carry, x)
        state_values = [scope.get_current_value(variable) for variable in state]
        return (carry, state_values), keep(carry)

    unroll = _jax_unroll(int(_flatten(xs)[0].shape[0]))
    (carry, state_values), ys = jax.lax.scan(body, (init, _uncast_values(state)), xs, unroll=unroll)
    for variable, value in zip(state, state_values):
        variable.assign(value)
    return carry, ys


# ---------------------------------------------------------------------- steps
def _run_stateless(variables, values, function, *args):
    """Calls `function(*args)` reading `variables` as `values`: (result, new values)."""
    with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
        result = function(*args)
    return result, [scope.get_current_value(variable) for variable in variables]


def train_step(model, *args):
    """One optimizer step of `model` (see `SVG.train_step`), in the backend's calling form.

    The model provides `schedules()` -> (kl_anneal, tfr), `training_schedule()` -> (kl_anneal,
    tfr, teacher_forced: bool tensor, drawn from its random stream), `training_losses(batch,
    teacher_forced: Python bool, kl_anneal)` -> dict with "loss", and `track(values)` -> logs.
    Each teacher-forcing branch is a trace of its own, differentiated and compiled on its
    own, and the host picks the branch of each batch (`tf_train_function`,
    `jax_train_function`): XLA runs a branch inside a conditional many times slower on a
    CPU, and TensorFlow cannot all-reduce across replicas inside one.

    Args:
        model: The model being trained.
        *args: `(data, teacher_forced)` on TensorFlow; `(state, data)` on JAX, run eagerly
            (`jax_train_function` compiles the branches apart).
    """
    if current_backend() == "jax":
        state, data = args
        schedule, state = jax_training_schedule(model, state)
        return jax_branch_step(model, bool(schedule[2]), state, data, schedule)
    return _tf_train_step(model, *args)


def tf_train_function(model):
    """The train function of a TensorFlow `fit`: each batch's teacher-forcing coin is drawn
    on the host, which then runs the traced step of that branch (each traced when first used).

    The coin is the one `training_schedule` draws, from the model's random stream, so a
    resumed run goes on drawing the same coins. With `steps_per_execution` above 1 a coin
    holds for as many batches.

    Args:
        model: A compiled `ScheduledTraining` model on TensorFlow.
    """
    # Keras's `_make_function` wraps a step in the strategy's `run`, its reduction of the
    # logs and the loop over `steps_per_execution` batches.
    steps = {
        teacher_forced: model._make_function(
            lambda data, teacher_forced=teacher_forced: model.train_step(data, teacher_forced))
        for teacher_forced in (True, False)
    }

    def train_function(iterator):
        _, _, teacher_forced = model.training_schedule()
        return steps[bool(teacher_forced)](iterator)

    return train_function


def jax_train_function(model):
    """The train function of a JAX `fit`: per batch, the schedules and the teacher-forcing
    coin are computed from the step's state, and the host runs the compiled step of the
    coin's branch (each compiled when first used).

    The draw advances the model's random stream as the step inside one program would, so
    runs and resumes draw the coins they drew before. The host waits for the previous
    step's random state before it dispatches the next step, as TensorFlow's host does.

    Args:
        model: A compiled `ScheduledTraining` model on JAX.
    """
    import jax

    if not model.jit_compile or model.run_eagerly:
        return model._make_function(model.train_step)
    schedule = jax.jit(functools.partial(jax_training_schedule, model))
    steps = jax_branch_steps(model)

    def one_step(state, data):
        values, state = schedule(state)
        return steps[bool(values[2])](state, data, values)

    return model._make_function(one_step)


def jax_branch_steps(model):
    """{teacher_forced: `jax_branch_step` of that branch, jitted}: (state, data, schedule) ->
    (logs, new state), the state's buffers donated to the new state.

    Args:
        model: A compiled `ScheduledTraining` model on JAX.
    """
    import jax

    # Keras's own train function lays the new state out as the distribution does.
    shardings = None if keras.distribution.distribution() is None else (None, model._get_state_sharding_spec())
    return {teacher_forced: jax.jit(functools.partial(jax_branch_step, model, teacher_forced),
                                    donate_argnums=0, out_shardings=shardings)
            for teacher_forced in (True, False)}


def jax_training_schedule(model, state):
    """`model.training_schedule()` on the JAX trainer's state: ((kl_anneal, tfr,
    teacher_forced), the state with the random stream advanced past the coin).

    Args:
        model: The model being trained.
        state: (trainable, non-trainable, optimizer, metrics variable values).
    """
    trainable, non_trainable, optimizer_values, metric_values = state
    model_state, optimizer_variables = model.non_trainable_variables, model.optimizer.variables
    # The schedules read optimizer.iterations, so the optimizer's values are mapped too.
    values, new_values = _run_stateless(
        [*model_state, *optimizer_variables], [*non_trainable, *optimizer_values], model.training_schedule)
    return values, (trainable, new_values[: len(model_state)], optimizer_values, metric_values)


def jax_branch_step(model, teacher_forced, state, data, schedule):
    """One optimizer step in one teacher-forcing branch, on the JAX trainer's state.

    Args:
        model: The model being trained.
        teacher_forced: Python bool, the branch.
        state: (trainable, non-trainable, optimizer, metrics variable values), the random
            stream already past the coin (`jax_training_schedule`).
        data: The batch.
        schedule: (kl_anneal, tfr, teacher_forced) of `jax_training_schedule`.

    Returns:
        (logs, new state).
    """
    import jax

    trainable, non_trainable, optimizer_values, metric_values = state
    weights, model_state = model.trainable_variables, model.non_trainable_variables
    optimizer_variables = model.optimizer.variables
    kl_anneal, tfr, _ = schedule

    def loss_and_updates(trainable, non_trainable):
        def losses():
            values = model.training_losses(data, teacher_forced, kl_anneal)
            return values, model.optimizer.scale_loss(values["loss"])

        (values, scaled_loss), new_values = _run_stateless(
            [*weights, *model_state, *optimizer_variables],
            [*trainable, *non_trainable, *optimizer_values],
            losses,
        )
        new_state = new_values[len(weights) : len(weights) + len(model_state)]
        return scaled_loss, (values, new_state)

    (_, (values, non_trainable)), gradients = jax.value_and_grad(loss_and_updates, has_aux=True)(
        trainable, non_trainable)
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, gradients, trainable
    )
    logs, metric_values = _run_stateless(
        model.metrics_variables, metric_values, model.track,
        {**values, "kl_anneal": kl_anneal, "tfr": tfr},
    )
    return logs, (trainable, non_trainable, optimizer_values, metric_values)


def _tf_train_step(model, data, teacher_forced):
    import tensorflow as tf

    kl_anneal, tfr = model.schedules()
    with tf.GradientTape() as tape:
        values = model.training_losses(data, teacher_forced, kl_anneal)
        # A replica's loss is the mean over its share of the batch and the optimizer sums
        # the replicas' gradients: divided by the replicas, the sum is the gradient of the
        # mean over the global batch.
        loss = values["loss"] / replicas()
        scaled_loss = model.optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled_loss, model.trainable_variables)
    model.optimizer.apply_gradients(zip(_clipped_as_one(model.optimizer, gradients), model.trainable_variables))
    return model.track({**values, "kl_anneal": kl_anneal, "tfr": tfr})


def _clipped_as_one(optimizer, gradients):
    """A replica's gradients, clipped by the global norm of all replicas' gradients together.

    Keras clips each replica's gradients before it sums them; with `global_clipnorm` and
    several replicas the sum is taken here instead, clipped as the single-device step clips
    it, and handed on in equal shares: each share's norm is at most `global_clipnorm` divided
    by the replicas, which the optimizer's own clipping leaves as it is (to rounding), and
    the optimizer's sum of the shares is the clipped sum.
    """
    import tensorflow as tf

    clip = getattr(optimizer, "inner_optimizer", optimizer).global_clipnorm
    count = replicas()
    if not clip or count == 1:
        return gradients
    total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)
    # Under mixed precision the gradients are those of the scaled loss; the norm is not.
    norm = tf.linalg.global_norm(total) / optimizer.scale_loss(tf.constant(1.0))
    factor = clip * ops.minimum(1.0 / norm, 1.0 / clip) / count
    return [gradient * ops.cast(factor, gradient.dtype) for gradient in total]


def test_step(model, *args):
    """One validation step: `model.validation_logs(data)` in the backend's calling form.

    Args:
        model: The model being evaluated.
        *args: `(data,)` on TensorFlow, `(state, data)` on JAX.
    """
    if current_backend() != "jax":
        return model.validation_logs(*args)
    (trainable, non_trainable, metric_values), data = args
    variables = [*model.trainable_variables, *model.non_trainable_variables, *model.metrics_variables]
    logs, new_values = _run_stateless(
        variables, [*trainable, *non_trainable, *metric_values], model.validation_logs, data
    )
    split = len(trainable)
    non_trainable = new_values[split : split + len(non_trainable)]
    return logs, (trainable, non_trainable, new_values[split + len(non_trainable) :])


# ---------------------------------------------------------------------- inference
def compiled(function, layer=None, jit_compile=False):
    """`function` compiled into one graph: tf.function on TensorFlow, jax.jit on JAX.

    Args:
        function: A function of tensors that may call `layer` (no variable updates).
        layer: The layer whose variables `function` reads, or None.
        jit_compile: XLA on TensorFlow. JAX always compiles with XLA (it has no other graph
            compiler), where the compile is quick even on a CPU.

    Returns:
        A callable taking and returning what `function` does.
    """
    if current_backend() != "jax":
        import tensorflow as tf

        return tf.function(function, jit_compile=jit_compile, reduce_retracing=True, autograph=False)
    import jax

    variables = layer.variables if layer is not None else []

    @jax.jit
    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return function(*args)

    return lambda *args: pure(_uncast_values(variables), *args)


# ---------------------------------------------------------------------- training state
def sync_variables(model):
    """Makes `model`'s variables hold the current training state, mid-epoch included.

    JAX's `fit` keeps the state in arrays between the steps of an epoch and frees the
    variables' values; a callback that reads weights mid-epoch must write them back first.

    Args:
        model: The model being fitted.
    """
    if current_backend() == "jax" and getattr(model, "_jax_state", None) is not None:
        model.jax_state_sync()


def is_out_of_memory(error) -> bool:
    """Whether `error` says that a step did not fit in the device's memory.

    TensorFlow raises `ResourceExhaustedError`, JAX an `XlaRuntimeError` whose message
    starts with RESOURCE_EXHAUSTED, NumPy and the host a `MemoryError`.

    Args:
        error: An exception raised by a training or evaluation step.
    """
    if isinstance(error, MemoryError):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return "ResourceExhaustedError" in names or (
        "XlaRuntimeError" in names and "RESOURCE_EXHAUSTED" in str(error))


@contextlib.contextmanager
def unshared():
    """Within the block, what Keras makes is made for this process alone.

    With several processes (JAX, see `distributed`) a new variable is placed on the devices
    of all of them, a step that every process must take together. What only the first
    process does (saving: Keras's saving makes reference objects, an optimizer among them)
    leaves that distribution off. Reading the replicated variables needs no other
    process: each holds a whole copy. In a single process the block changes nothing.
    """
    if _process_count() == 1:
        yield
        return
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


@contextlib.contextmanager
def on_this_process(model):
    """Within the block, `model` computes on this process alone, from copies of its variables.

    With several processes (JAX, see `distributed`) the variables are arrays over the
    devices of all of them, and every computation on them is one that all processes must
    run together; what only the first process draws (a GIF, the latent usage) reads host
    copies instead, and assignments in the block are dropped. In a single process the
    block changes nothing.

    Args:
        model: The model being fitted.
    """
    if _process_count() == 1:
        yield
        return
    import numpy as np

    sync_variables(model)
    variables = model.variables
    # A replicated array is read from this process's own copy: no other process takes part.
    copies = [np.asarray(value) for value in _uncast_values(variables)]
    with unshared():
        with AutocastScope(None):  # see `_jax_scan`: the copies keep the variables' dtypes
            scope = keras.StatelessScope(state_mapping=list(zip(variables, copies)))
        with scope:
            yield


# ---------------------------------------------------------------------- several devices
def accelerator_present() -> bool:
    """Whether the backend sees a GPU (or, on JAX, a TPU)."""
    if current_backend() == "jax":
        import jax

        return any(device.platform != "cpu" for device in jax.devices())
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def default_device_count():
    """Devices of this process a training run uses unless told: every GPU (or TPU) of the
    process on JAX, else 1."""
    if current_backend() != "jax":
        return 1
    import jax

    return max(1, sum(device.platform != "cpu" for device in jax.local_devices()))


def _process_count():
    if current_backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def _devices(count):
    """The first `count` JAX devices of every process (accelerators if there are any, else
    CPU devices), process after process: the order in which the processes' shares of a
    batch make up the global batch (see `data.shards`)."""
    import jax

    devices = [d for d in jax.devices() if d.platform != "cpu"] or jax.devices("cpu")
    chosen = []
    for process in range(jax.process_count()):
        names = [f"{d.platform}:{d.id}" for d in devices if d.process_index == process]
        if count > len(names):
            where = f" on process {process}" if jax.process_count() > 1 else ""
            raise ValueError(f"devices (--devices) {count}: only {len(names)} found{where} ({', '.join(names)})")
        chosen += names[:count]
    return chosen


@functools.cache
def _mirrored_strategy(count):
    """A `MirroredStrategy` over the first `count` GPUs, or the first `count` logical CPU
    devices where there is no GPU; one per process and count: strategies made apart number
    their collective operations alike, which the runtime then mismatches."""
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    names = [device.name for device in devices]
    if count > len(names):
        raise ValueError(f"devices (--devices) {count}: only {len(names)} found ({', '.join(names)})")
    return tf.distribute.MirroredStrategy(names[:count])


def replicas() -> int:
    """The copies of the step that each compute a share of the batch: the devices of a
    TensorFlow `data_parallel` block, else 1 (JAX's step is one program over all devices)."""
    if current_backend() == "jax":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def batch_noise(shape, seed):
    """Standard normal noise for a batch, the same for its rows however the batch is split.

    A TensorFlow replica holds consecutive rows of the global batch; it draws the noise of
    the global batch and keeps its own rows. Drawn as rows of its share alone, every replica
    would draw the same noise.

    Args:
        shape: [batch, ...]; `batch` the rows this replica holds.
        seed: The model's `keras.random.SeedGenerator`.
    """
    if replicas() == 1:
        return keras.random.normal(shape, seed=seed)
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None:  # outside the step: the rows of the whole batch
        return keras.random.normal(shape, seed=seed)
    rows, rest = shape[0], tuple(shape[1:])
    noise = keras.random.normal((rows * context.num_replicas_in_sync, *rest), seed=seed)
    first = context.replica_id_in_sync_group * rows
    return noise[first : first + rows]


@contextlib.contextmanager
def data_parallel(count):
    """Within the block, models built, compiled and fitted split each batch over `count`
    devices of every process; a step equals the single-device step over the global batch.

    On JAX, `keras.distribution.DataParallel`: one program over the sharded batch. With
    several processes (`distributed`), each feeds its own share of every batch
    (`data.shards`), which Keras joins into the global batch without sharding it again.

    On TensorFlow, a `MirroredStrategy` over the first `count` GPUs (else logical CPU
    devices) of this one process: each device runs the step on its share. What the
    single-device step computes over the whole batch is synchronised: the gradients (summed,
    then clipped by the norm of the sum), BatchNorm's batch statistics (`layers.blocks.batch_norm`,
    whose loops are unrolled: see `scan`) and the noise (`batch_noise`); the teacher-forcing
    coin is drawn once per batch on the host (`tf_train_function`).

    Args:
        count: Devices of each process; 1 in a single process is a plain single-device run
            (any backend).

    Raises:
        ValueError: More devices than there are.
    """
    if count == 1 and _process_count() == 1:
        yield
        return
    if current_backend() != "jax":
        with _mirrored_strategy(count).scope():
            yield
        return
    distribution = keras.distribution.DataParallel(devices=_devices(count), auto_shard_dataset=False)
    with distribution.scope():
        yield
