"""What verl 0.9.1 lacks to train anywhere: a Hugging Face `generate` rollout and a CPU mode.

verl imports this module in every one of its processes (driver, trainer, FSDP workers, agent-loop
and reward workers) through its own hook, `VERL_USE_EXTERNAL_MODULES=ssl4rl.train.verl_plugin`,
which `ssl4rl train --backend verl --rollout hf` / `--device cpu` sets; no verl file is patched
or copied. It is the one place that touches verl's internals, so it is pinned: on any other verl
version it stops at import with one line.

- Always: the rollout backend `hf` (`actor_rollout_ref.rollout.name=hf`). verl 0.9.1 registers
  only vLLM, SGLang and TRT-LLM, so without one of them it cannot train at all. A replica here is
  one Ray actor that holds a Hugging Face copy of the policy (a vision-language model, or a text
  model for graph puzzles: AutoModelForCausalLM), answers the agent loop's
  token-in/token-out `generate` calls with `model.generate` (never sampling the vision special
  tokens, which crash Qwen2.5-VL's own forward), and receives the actor's weights after every
  step. Slow, but it needs nothing beyond transformers, on CPU or GPU. With LoRA the launcher
  sets `actor_rollout_ref.model.lora.merge=true`, so the replica receives merged weights. Each
  sampled reply comes from its own seed (`SeededSampling`), so a run on it repeats.
- Always: a batch whose rows all have the same length keeps its M-RoPE position ids nested
  along the sequence (verl 0.9.1 nested them along the wrong dim and crashed in the micro-batch
  split once a policy's replies all had one length).
- Always: the trainer looks for finished rollouts every 0.05 s, not every 2 s (verl 0.9.1's
  replay buffer sleeps a whole poll interval between looks, so every step waited 2-4 s for
  rollouts that took well under one: half of a CPU step).
- Always: trl's presence must not switch on verl's value-head patch, which imports a class
  trl 1.x no longer has (`AutoModelForCausalLMWithValueHead`).
- With `SSL4RL_CURRICULUM` (`--curriculum adaptive`): each step's metrics carry the level the
  curriculum served each task (`curriculum/<task>`), for the step line and TensorBoard.
- With `SSL4RL_VERL_DEVICE=cpu` (`--device cpu`): a CPU platform on gloo process groups, the FSDP
  engine found for it, FSDP2 CPU offload without pinned memory (pinning needs a CUDA driver),
  and a process-group backend string without the duplicate "cpu:gloo,cpu:gloo".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import threading
import zlib
from importlib.metadata import version
from types import SimpleNamespace

from ssl4rl.train.verl_config import VERL_VERSION

DEVICE_ENV = "SSL4RL_VERL_DEVICE"
CURRICULUM_ENV = "SSL4RL_CURRICULUM"  # set by the launcher for --curriculum adaptive
ROLLOUT_NAME = "hf"
GATHER_SECONDS = 0.05  # the hf rollout waits this long for more requests before generating
MAX_BATCH = 128  # requests per `generate` call
POLL_SECONDS = 0.05  # how often the trainer looks for finished rollouts (verl: 2 s)

if version("verl") != VERL_VERSION:
    raise RuntimeError(f"ssl4rl's verl plugin is written for verl {VERL_VERSION}, found {version('verl')}: pip install verl=={VERL_VERSION}")

import ray  # noqa: E402
import torch  # noqa: E402
from verl.plugin.platform import PlatformBase, PlatformRegistry, set_platform  # noqa: E402
from verl.workers.rollout import base as rollout_base  # noqa: E402
from verl.utils import tensordict_utils as _tensordict_utils  # noqa: E402
from verl.workers.rollout.base import BaseRollout  # noqa: E402
from verl.workers.rollout.replica import RolloutReplica, RolloutReplicaRegistry, TokenOutput  # noqa: E402


# ---------------------------------------------------------------- the Hugging Face rollout
def server_name(replica_rank: int) -> str:
    return f"ssl4rl_hf_rollout_{replica_rank}"


class SeededSampling:
    """Sampling as a logits processor for greedy `generate`: temperature, top-k and top-p as
    transformers applies them, then Gumbel noise from each row's own generator, so the argmax is
    a draw from the row's distribution that depends on its seed alone, not on the batch."""

    def __init__(self, seeds: list[int], temperature: float, top_k: int = -1, top_p: float = 1.0):
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        self.warpers = [TemperatureLogitsWarper(temperature)]
        if top_k > 0:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-300, 1 - 1e-16)))
        return scores.float() + gumbel.to(scores.device, torch.float32)


class HFGenerateServer:
    """The replica's server (a Ray actor): `generate` for verl's agent loop, weights from the actor.

    The agent loop has already applied the chat template and expanded every `<image>` into its
    `<|image_pad|>` ids with the processor saved beside the model; the server rebuilds the pixel
    tensors from the same images with the same processor, so ids and grids agree.
    """

    def __init__(self, model_path: str, response_length: int, seed: int = 0):
        from ssl4rl.models import is_text_model, load_model, load_processor, vision_token_ids

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = load_model(model_path, torch.bfloat16 if self.device == "cuda" else torch.float32).to(self.device).eval()
        if is_text_model(model_path):  # a text model (graph puzzles): no processor, nothing to suppress
            self.processor, self.suppress = None, None
        else:
            self.processor = load_processor(model_path)
            self.suppress = vision_token_ids(self.processor.tokenizer)
        self.response_length = int(response_length)
        self.eos = self.model.generation_config.eos_token_id
        config_pad = self.model.generation_config.pad_token_id
        self.pad = config_pad if config_pad is not None else (self.eos if isinstance(self.eos, int) else (self.eos or [0])[0])
        self.global_steps = 0
        self.seed = int(seed)
        self.drawn: dict[str, int] = {}  # request content -> samples drawn for it since the last weights
        self.lock = threading.Lock()
        self.waiting: dict[str, list] = {}  # sampling parameters -> requests not yet generated
        self.drainer = None

    def ready(self) -> bool:
        return True

    def load_weights(self, state: dict, global_steps: int | None = None) -> int:
        """The actor's weights after a step; returns how many tensors were loaded."""
        result = self.model.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise RuntimeError(f"hf rollout: weights the model does not have: {result.unexpected_keys[:5]}")
        missing = [k for k in result.missing_keys if k in dict(self.model.named_parameters())]
        if missing:
            raise RuntimeError(f"hf rollout: the actor sent no weights for {missing[:5]}")
        if global_steps is not None:
            self.global_steps = int(global_steps)
        self.drawn.clear()
        return len(state)

    def sample_seed(self, prompt_ids: list[int], images) -> int:
        """The seed of one sampled reply: (rollout seed, weights step, the request's tokens and
        pixels, how many replies to the same request were drawn before it). verl sends a prompt's
        n rollouts as n identical requests in no fixed order; they are interchangeable, so a
        group's replies are the same whatever order they arrive in and however they are batched."""
        pixels = [zlib.crc32(image.tobytes()) if hasattr(image, "tobytes") else repr(image) for image in images or []]  # crc32: GB/s
        key = hashlib.sha256(f"{self.seed}/{self.global_steps}/{list(map(int, prompt_ids))}/{pixels}".encode()).hexdigest()
        drawn = self.drawn.get(key, 0)
        self.drawn[key] = drawn + 1
        return int.from_bytes(hashlib.sha256(f"{key}/{drawn}".encode()).digest()[:8], "little")

    def _generate(self, prompt_ids: list[int], sampling_params: dict, images, seed: int | None = None) -> tuple[list[int], list[float] | None]:
        """One request: (response ids, their log-probabilities when asked for)."""
        return self._generate_batch([(prompt_ids, images)], sampling_params, None if seed is None else [seed])[0]

    def _generate_batch(
        self, requests: list[tuple[list[int], list | None]], sampling_params: dict, seeds: list[int] | None = None
    ) -> list[tuple[list[int], list[float] | None]]:
        """Requests with the same sampling parameters in one `generate` call, prompts left-padded
        (the attention mask keeps every row's positions and M-RoPE grid its own). Each sampled
        row draws from its own seed (`seeds`, else drawn from torch's generator)."""
        if self.processor is None and any(images for _, images in requests):
            raise ValueError("hf rollout: a text model was given images")
        width = max(len(ids) for ids, _ in requests)
        ids = torch.tensor([[self.pad] * (width - len(p)) + list(p) for p, _ in requests], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p, _ in requests], device=self.device)
        vision = {}
        images = [image for _, row_images in requests for image in row_images or []]
        if images:
            vision = {k: v.to(self.device) for k, v in self.processor.image_processor(images=images, return_tensors="pt").items()}
            if hasattr(self.processor, "create_mm_token_type_ids"):
                # which ids are image tokens: without it, transformers 5 gives the image tokens text
                # positions, so the rollout samples from another model than the actor trains (the
                # tiny model's format broke: "<think> <answer>270</answer>90</answer>0")
                vision["mm_token_type_ids"] = torch.tensor(self.processor.create_mm_token_type_ids(ids.tolist()), device=self.device)
        temperature = float(sampling_params.get("temperature", 1.0) or 0.0)
        processors = []
        if temperature > 0:
            if seeds is None:
                seeds = torch.randint(0, 2**62, (len(requests),)).tolist()
            top_k, top_p = int(sampling_params.get("top_k", -1) or -1), float(sampling_params.get("top_p", 1.0) or 1.0)
            processors = [SeededSampling(seeds, temperature, top_k, top_p)]
        with self.lock, torch.no_grad():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, **vision, do_sample=False, logits_processor=processors, pad_token_id=self.pad,
                max_new_tokens=self.response_length, suppress_tokens=self.suppress,
                return_dict_in_generate=True, output_logits=bool(sampling_params.get("logprobs")),
            )  # fmt: skip
        eos = {self.eos} if isinstance(self.eos, int) else set(self.eos or [])
        logits = torch.stack(out.logits, dim=1).float() if out.logits is not None else None
        results = []
        for row in range(len(requests)):
            tokens = out.sequences[row, width:].tolist()
            cut = next((i + 1 for i, t in enumerate(tokens) if t in eos), len(tokens))
            tokens = tokens[:cut]
            log_probs = None
            if logits is not None:
                log_probs = torch.log_softmax(logits[row, :cut] / (temperature or 1.0), -1).gather(-1, torch.tensor(tokens, device=logits.device)[:, None])[:, 0].tolist()
            results.append((tokens, log_probs))
        return results

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, video_data=None, **_) -> TokenOutput:
        """verl's agent loop sends every rollout as its own concurrent request; requests that
        arrive together are answered by one batched `generate` (on CPU, 128 one-at-a-time calls
        took 8 s of a 14-20 s step)."""
        if video_data:
            raise NotImplementedError("hf rollout: video inputs are not supported")
        params = dict(sampling_params or {})
        future = asyncio.get_running_loop().create_future()
        seed = self.sample_seed(prompt_ids, image_data) if float(params.get("temperature", 1.0) or 0.0) > 0 else 0
        self.waiting.setdefault(json.dumps(params, sort_keys=True, default=str), []).append((list(prompt_ids), image_data, seed, future))
        if self.drainer is None or self.drainer.done():
            self.drainer = asyncio.ensure_future(self._drain())
        tokens, log_probs = await future
        return TokenOutput(token_ids=tokens, log_probs=log_probs, stop_reason="completed", extra_fields={"global_steps": self.global_steps})

    async def _drain(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)  # let the rest of a step's requests arrive
        while self.waiting:
            key = next(iter(self.waiting))
            batch = self.waiting.pop(key)
            if len(batch) > MAX_BATCH:
                batch, self.waiting[key] = batch[:MAX_BATCH], batch[MAX_BATCH:]
            try:
                requests, seeds = [(ids, images) for ids, images, *_ in batch], [seed for *_, seed, _ in batch]
                results = await asyncio.to_thread(self._generate_batch, requests, json.loads(key), seeds)
            except Exception as error:  # noqa: BLE001 - every waiting request gets the failure
                for *_, future in batch:
                    future.set_exception(error)
            else:
                for (*_, future), result in zip(batch, results):
                    future.set_result(result)

    # verl's control calls; a Hugging Face model has no KV cache pool or sleep mode to manage.
    async def wake_up(self): ...
    async def sleep(self): ...
    async def abort_all_requests(self, reject_request: bool = False): ...
    async def resume_generation(self): ...
    async def clear_kv_cache(self): ...
    async def release_kv_cache(self): ...
    async def resume_kv_cache(self): ...
    async def start_profile(self, **kwargs): ...
    async def stop_profile(self): ...


class HFReplica(RolloutReplica):
    """One HFGenerateServer per replica, created when verl initialises its hybrid engine."""

    async def launch_servers(self):
        name = server_name(self.replica_rank)
        model = self.model_config.get("local_path") or self.model_config.path  # a DictConfig here, not HFModelConfig
        server = (
            ray.remote(HFGenerateServer)
            .options(name=name, num_cpus=0, max_concurrency=self.max_concurrency)
            .remote(model, self.config.response_length, getattr(self.config, "seed", 0))
        )
        await server.ready.remote()  # a model that fails to load fails here, at init
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf://{name}"


class HFServerAdapter(BaseRollout):
    """Lives in each FSDP worker: forwards the actor's weights to its replica's server."""

    async def resume(self, tags: list[str]): ...

    async def release(self): ...

    async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs):
        if wire_format != "named_tensors" or kwargs.get("peft_config") is not None:
            raise RuntimeError("hf rollout takes full named tensors: set actor_rollout_ref.model.lora.merge=true with LoRA")
        world = self.config.tensor_model_parallel_size * self.config.data_parallel_size * self.config.pipeline_model_parallel_size
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        leader = rank % world == 0
        state = {}
        for name, tensor in weights:  # every rank runs the generator to the end: it gathers shards collectively
            if leader:
                state[name] = tensor.detach().to("cpu", copy=True)
        if leader:
            server = ray.get_actor(server_name(rank // world))
            await server.load_weights.remote(state, kwargs.get("global_steps"))


RolloutReplicaRegistry.register(ROLLOUT_NAME, lambda: HFReplica)
rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = f"{__name__}.HFServerAdapter"

# verl applies a value-head patch when trl is importable, from a class trl 1.x removed.
import verl.utils.import_utils as _import_utils  # noqa: E402

_import_utils.is_trl_available = lambda: False


# ---------------------------------------------------------------- M-RoPE position ids of equal-length batches
def _fix_position_ids(data) -> None:
    """verl 0.9.1 nests each row's (4, length) M-RoPE position ids with `as_nested_tensor`, which
    makes the *first* dim ragged when every row has the same length (fixed-length prompts, every
    reply the same length: a policy that has learned its format on a synthetic puzzle); its
    `maybe_fix_3d_position_ids` then forces `_ragged_idx = 2` on it and the micro-batch split
    crashes ("size of tensor a (4) must match ... b (3)"). Such ids are rebuilt here along the
    sequence, the layout rows of different lengths get; any other batch is left to verl."""
    position_ids = data["position_ids"] if "position_ids" in data.keys() else None
    if position_ids is not None and position_ids.is_nested and position_ids.dim() == 3:
        values, offsets = position_ids._values, position_ids.offsets()
        total = int(offsets[-1])
        if values.dim() == 2 and total == values.shape[0] != values.shape[-1]:  # ragged along the 4 M-RoPE rows
            rows, length = len(offsets) - 1, values.shape[-1]
            by_row = values.reshape(rows, total // rows, length).permute(1, 0, 2).reshape(total // rows, rows * length)
            sequence_offsets = torch.arange(0, rows * length + 1, length, device=values.device)
            data["position_ids"] = torch.nested.nested_tensor_from_jagged(by_row, offsets=sequence_offsets, jagged_dim=2)
            return
    _verl_fix_position_ids(data)


_verl_fix_position_ids = _tensordict_utils.maybe_fix_3d_position_ids
for _module in ("verl.utils.tensordict_utils", "verl.workers.engine_workers", "verl.workers.engine.base"):
    if _module in sys.modules:  # those not loaded yet import the fixed one when they load
        sys.modules[_module].maybe_fix_3d_position_ids = _fix_position_ids


# ---------------------------------------------------------------- the replay buffer's poll
def _poll_sooner() -> None:
    from verl.trainer.ppo.v1 import replay_buffer

    original = replay_buffer.ReplayBuffer.__init__
    if getattr(original, "ssl4rl_poll", False):
        return

    def __init__(self, *args, poll_interval: float = POLL_SECONDS, **kwargs):
        original(self, *args, poll_interval=poll_interval, **kwargs)

    __init__.ssl4rl_poll = True
    replay_buffer.ReplayBuffer.__init__ = __init__  # ReplayBufferAsync inherits it


# ---------------------------------------------------------------- the order of a step's rollouts
def trajectory_order(data_source: str, index: int, response: list[int], key: str) -> tuple:
    """Where one rollout goes in its step's batch: by puzzle set, row, then reply.

    verl keys a rollout `{uid}_{session}_{output}` with a random uuid4 `uid`, and which session of
    a group gets which reply depends on arrival (a group's n requests are identical); the row
    (data source and `extra_info.index`) and the reply's tokens depend on neither. Rollouts equal
    in all three are interchangeable; the key only breaks their tie.

    >>> rollouts = [("ssl4rl/rotation", 12, [7, 2], "a9_0_0"), ("ssl4rl/rotation", 3, [5], "f0_1_0"),
    ...             ("ssl4rl/rotation", 3, [4, 9], "f0_0_0")]
    >>> [key for *_, key in sorted(rollouts, key=lambda r: trajectory_order(*r))]
    ['f0_0_0', 'f0_1_0', 'a9_0_0']
    """
    return str(data_source), int(index), list(response), key


def _rollouts_in_row_order() -> None:
    """A step's rollouts reach the update in the order of their rows, so a run repeats.

    verl 0.9.1's replay buffer hands a step's batch over in the order its rollouts finished
    (asynchronous, so it varies from run to run), and the actor cuts its mini-batches from that
    order: with several updates a step (`ppo_mini_batch_size` < `train_batch_size`) two runs of
    one seed trained on different mini-batches from step 1 on and went apart (one learned the demo's
    puzzles in 8 steps, one did not in 12). Sorted by row and reply (`trajectory_order`), every
    mini-batch and micro-batch holds the same rollouts in the same order in every run; the
    sampled replies themselves already repeat (`SeededSampling`)."""
    import transfer_queue as tq
    from verl.trainer.ppo.v1 import replay_buffer

    original = replay_buffer.ReplayBuffer._materialize_batch
    if getattr(original, "ssl4rl_order", False):
        return

    def _materialize_batch(self, partition_id, selected_prompt_uids, partition_snapshot):
        batch = original(self, partition_id, selected_prompt_uids, partition_snapshot)
        if len(batch.keys) < 2:
            return batch
        rows = tq.kv_batch_get(keys=batch.keys, partition_id=partition_id, select_fields=["data_source", "index", "responses"])
        order = sorted(
            range(len(batch.keys)),
            key=lambda j: trajectory_order(
                _plain(rows["data_source"][j]), _plain(rows["index"][j]), rows["responses"][j].tolist(), batch.keys[j]
            ),
        )
        batch.reorder(order)
        return batch

    _materialize_batch.ssl4rl_order = True
    replay_buffer.ReplayBuffer._materialize_batch = _materialize_batch  # ReplayBufferAsync inherits it


def _plain(value):
    """A value as TransferQueue returns it (a tensor, a NonTensorData, a plain value) made plain."""
    value = getattr(value, "data", value)
    return value.item() if hasattr(value, "item") else value


# ---------------------------------------------------------------- CPU mode
class _CPUDeviceModule(SimpleNamespace):
    """What verl calls on `torch.cuda`, answered for the CPU (memory stats 0, RNG via torch)."""

    def __getattr__(self, name):
        if name.startswith(("memory_", "max_memory_", "reset_")):
            return lambda *args, **kwargs: 0
        return getattr(torch.cpu, name)

    @staticmethod
    def current_device():
        return torch.device("cpu")

    @staticmethod
    def get_device_name(*_):
        return "CPU"

    @staticmethod
    def mem_get_info(*_):
        return (64 << 30, 64 << 30)

    manual_seed = manual_seed_all = staticmethod(torch.manual_seed)
    get_rng_state, set_rng_state = staticmethod(torch.get_rng_state), staticmethod(torch.set_rng_state)
    set_device = empty_cache = synchronize = staticmethod(lambda *args, **kwargs: None)
    device_count = staticmethod(lambda: 1)
    is_available = staticmethod(lambda: True)


@PlatformRegistry.register(platform="cpu")
class CPUPlatform(PlatformBase):
    """verl's platform interface on the CPU: gloo collectives, logical "GPU" resources in Ray."""

    device_name = vendor_name = "cpu"
    device_module = _CPUDeviceModule()

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check=False) -> bool:
        return os.environ.get(DEVICE_ENV) == "cpu"

    def current_device(self):
        return torch.device("cpu")  # an int would mean cuda:N to FSDP

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index) -> None: ...

    def synchronize(self, device_index=None) -> None: ...

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None: ...

    def empty_cache(self) -> None: ...

    def get_device_capability(self, device_index: int = 0):
        return (None, None)

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    def nvtx_range(self, msg: str):
        return contextlib.nullcontext()

    def profiler_start(self) -> None: ...

    def profiler_stop(self) -> None: ...

    def ray_resource_name(self) -> str:
        return "GPU"  # Ray's logical GPUs (ray_init.num_gpus) stand for the FSDP ranks

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self):
        return None


def _unique_backends(init_process_group):
    """verl builds "cpu:gloo,cpu:gloo" on a CPU platform; torch rejects a repeated device."""

    def wrapped(*args, **kwargs):
        backend = kwargs.get("backend")
        if isinstance(backend, str) and "," in backend:
            kwargs["backend"] = ",".join(dict.fromkeys(part.strip() for part in backend.split(",")))
        return init_process_group(*args, **kwargs)

    wrapped.ssl4rl_unique_backends = True
    return wrapped


def _install_cpu_mode() -> None:
    import verl.utils.fsdp_utils as fsdp_utils

    set_platform(CPUPlatform())
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")  # the FSDP engine is registered for cuda/npu only
    if not getattr(torch.distributed.init_process_group, "ssl4rl_unique_backends", False):
        torch.distributed.init_process_group = _unique_backends(torch.distributed.init_process_group)

    class UnpinnedCPUOffloadPolicy(fsdp_utils.CPUOffloadPolicy):
        """verl gives forward-only engines pin_memory=True, which needs a CUDA driver."""

        def __init__(self, pin_memory: bool = True):
            super().__init__(pin_memory=False)

    fsdp_utils.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy


def _install_curriculum_metrics() -> None:
    """Each step's metrics (verl's step line, TensorBoard) get `curriculum/<task>`, the level the
    adaptive curriculum dataset served each task for the step (ssl4rl.curriculum.level_metrics:
    the dataset and the trainer share a process, as the launcher sets no dataloader workers).
    verl's trainers bind compute_data_metrics when imported, after this module (loaded by
    verl/__init__), so replacing it in metric_utils reaches them."""
    import sys

    from verl.trainer.ppo import metric_utils

    from ssl4rl.curriculum import level_metrics

    original = metric_utils.compute_data_metrics
    if getattr(original, "ssl4rl_levels", False):
        return

    def compute_data_metrics(*args, **kwargs):
        return {**original(*args, **kwargs), **level_metrics()}

    compute_data_metrics.ssl4rl_levels = True
    metric_utils.compute_data_metrics = compute_data_metrics
    for name in ("verl.trainer.ppo.ray_trainer", "verl.trainer.ppo.v1.trainer_base"):
        if name in sys.modules:
            sys.modules[name].compute_data_metrics = compute_data_metrics


if os.environ.get(DEVICE_ENV) == "cpu":
    _install_cpu_mode()
_rollouts_in_row_order()
_poll_sooner()  # after the CPU mode: the replay buffer's imports load the FSDP engine, which must see its offload policy
if os.environ.get(CURRICULUM_ENV):
    _install_curriculum_metrics()
