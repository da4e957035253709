"""Data parallelism for the LM agent: one process per rank, each with its own envs, under
``torchrun --nproc_per_node=N`` or ``accelerate launch`` (both set ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``), with the gloo backend on CPU and nccl on GPU.

:class:`Ranks` is what an agent needs from ``torch.distributed``: sums across ranks, one
all-reduce of the gradients per optimizer step, rank 0's weights broadcast at the start,
and writes made by rank 0 alone. With one process every method is the identity, so the
single-process path runs the same code without a process group.
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def wants_distributed(distributed: bool | None) -> bool:
    """``distributed=None`` (auto): on when a process group is initialised or the launcher
    set ``WORLD_SIZE`` > 1; True requires one of them; False: one process, whatever is set."""
    if distributed is not None and not isinstance(distributed, bool):
        raise TypeError(f"distributed must be None (auto), True or False, got {distributed!r}")
    launched = dist.is_available() and (dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) > 1)
    if distributed and not launched:
        raise ValueError("distributed=True needs a launcher (torchrun --nproc_per_node=N, accelerate launch) or an "
                         "initialised torch.distributed process group; WORLD_SIZE is "
                         f"{os.environ.get('WORLD_SIZE', 'unset')}")
    return launched if distributed is None else distributed


def rank_device(device: torch.device) -> torch.device:
    """``cuda`` without an index becomes this process's GPU, ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _collect_and_destroy_process_group() -> None:
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


class Ranks:
    """The processes of a data-parallel run, seen from one of them (or a single process)."""

    def __init__(self, enabled: bool, device: torch.device):
        self.enabled = enabled
        self.device = device  # where collectives' tensors live: nccl needs CUDA tensors
        if enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            # a group still alive at interpreter teardown, or garbage (reference cycles holding
            # tensors) collected after it, aborts the process about one run in three (SIGABRT,
            # "terminate called without an active exception"): collect and destroy at exit
            atexit.register(_collect_and_destroy_process_group)
        if enabled and device.type == "cpu" and dist.get_backend() == "nccl":
            raise ValueError("the process group uses nccl, which needs CUDA tensors, and the agent's device is cpu: "
                             "init it with backend='gloo', or give device='cuda'")
        self.rank = dist.get_rank() if enabled else 0
        self.world_size = dist.get_world_size() if enabled else 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints and logs and shows progress bars."""
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the ranks (float64, so step counts stay exact)."""
        if not self.enabled:
            return [float(v) for v in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, values: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's 1-D ``values`` (of any lengths), in rank order."""
        if not self.enabled:
            return [values]
        values = values.to(self.device)
        sizes = [torch.zeros(1, dtype=torch.long, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(sizes, torch.tensor([len(values)], device=self.device))
        width = int(max(sizes).item())
        padded = [torch.zeros(width, dtype=values.dtype, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(padded, torch.cat([values, values.new_zeros(width - len(values))]))
        return [row[: int(size.item())].cpu() for row, size in zip(padded, sizes)]

    def moments(self, values: torch.Tensor) -> tuple[float, float] | None:
        """Mean and std (Bessel-corrected) of 1-D ``values`` pooled over the ranks; None for
        fewer than two values in all."""
        count, total = self.sum([values.numel(), values.sum().item()])
        if count <= 1:
            return None
        mean = total / count
        (squares,) = self.sum([((values.double() - mean) ** 2).sum().item()])
        return mean, (squares / (count - 1)) ** 0.5

    def same_everywhere(self, name: str, value: int) -> None:
        """A ``ValueError`` on every rank unless ``value`` is the same on all of them."""
        values = [int(v) for v in self.gather(torch.tensor([value]))]
        if len(set(values)) > 1:
            raise ValueError(f"{name} must be the same on every rank, got {values} (rank 0 first)")

    def broadcast_modules(self, modules: Iterable[nn.Module]) -> None:
        """Give every rank rank 0's weights and buffers, as DDP does when it wraps a model."""
        if self.enabled:
            for module in modules:
                for tensor in module.state_dict().values():
                    moved = tensor.to(self.device)  # a reference kept on the CPU, say, beside an nccl group
                    dist.broadcast(moved, src=0)
                    if moved is not tensor:
                        tensor.copy_(moved)

    def sum_gradients(self, parameters: Sequence[nn.Parameter], extra: torch.Tensor) -> torch.Tensor:
        """Sum the gradients of ``parameters`` and the 1-D ``extra`` over the ranks in one
        all-reduce (float32); returns the summed ``extra``. A parameter without a gradient
        on every rank keeps none (so Adam skips it, as in one process); one with a gradient
        somewhere gets zeros where it had none."""
        if not self.enabled:
            return extra
        has_grad = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float32, device=self.device)
        flat = torch.cat([*(p.grad.reshape(-1).float().to(self.device) if p.grad is not None
                            else torch.zeros(p.numel(), device=self.device) for p in parameters),
                          has_grad, extra.float().to(self.device)])
        dist.all_reduce(flat)
        n_grads = flat.numel() - len(parameters) - len(extra)
        offset = 0
        for p, anywhere in zip(parameters, flat[n_grads: n_grads + len(parameters)].tolist()):
            chunk = flat[offset: offset + p.numel()].view(p.shape)
            offset += p.numel()
            p.grad = chunk.to(p.device, p.dtype) if anywhere else None
        return flat[n_grads + len(parameters):]

    def main_writes(self, write: Callable[[], Any]) -> None:
        """Run ``write`` on rank 0 while the others wait; every rank returns once it is done,
        and every rank raises if it failed."""
        if not self.enabled:
            write()
            return
        error = None
        if self.is_main:
            try:
                write()
            except Exception as exc:  # re-raised below, once the others know
                error = exc
        failure = [f"{type(error).__name__}: {error}" if error is not None else None]
        dist.broadcast_object_list(failure, src=0)
        if error is not None:
            raise error
        if failure[0] is not None:
            raise RuntimeError(f"rank 0 failed to write: {failure[0]}")
