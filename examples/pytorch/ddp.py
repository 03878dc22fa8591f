#!/usr/bin/env python3
"""A tiny DistributedDataParallel training loop, launched by torchrun.

    rmcp run -- torchrun --standalone --nproc_per_node=2 examples/pytorch/ddp.py
    rmcp run -- torchrun --standalone --nproc_per_node=2 examples/pytorch/ddp.py --device cuda

On the CPU it uses the gloo backend; with --device cuda each worker uses the
GPU LOCAL_RANK (modulo the GPUs PyTorch sees) and the nccl backend (RCCL on
ROCm builds, where the GPU device is still called "cuda"). Batches come from a
DataLoader with num_workers=2 started with fork, so one run has three kinds of
process: the launcher, one worker per rank, and the DataLoader's workers.

Every rank prints one line saying whether librmcp.so is mapped in it and
whether LD_AUDIT is set, and each DataLoader worker prints the same about
itself. At the end rank 0 checks that every rank holds the same parameters
(what DDP promises) and that the loss went down, and prints "ok".
Exit status: 0 on success, 1 when a check fails, 2 on bad arguments.
"""

import argparse
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


def mapped(name):
    """True if a file called `name` (or `name`.N) is mapped in this process."""
    with open("/proc/self/maps") as f:
        for line in f:
            base = os.path.basename(line.split()[-1])
            if base == name or base.startswith(name + "."):
                return True
    return False


def say(line):
    """Prints one line with one write(2): the processes share stdout, and print() may
    write the text and the newline separately, which lets two processes' lines run
    together."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (line + "\n").encode())


def whoami(what):
    audit = "set" if os.environ.get("LD_AUDIT") else "not set"
    if mapped("librmcp-audit.so"):
        audit += ", librmcp-audit.so loaded"
    return f"{what}: pid {os.getpid()}, librmcp.so {'loaded' if mapped('librmcp.so') else 'NOT loaded'}, LD_AUDIT {audit}"


class Regression(Dataset):
    """y = x @ w_true + 0.5, computed per item (in the DataLoader's workers)."""

    def __init__(self, n, features):
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, features, generator=g)
        self.w = torch.randn(features, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        return x, x @ self.w + 0.5


def report_worker(worker_id):
    rank = os.environ.get("RANK", "?")
    say(whoami(f"rank {rank} dataloader worker {worker_id}"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu (gloo) or cuda (nccl/RCCL, the AMD GPU on ROCm builds); default: %(default)s")
    p.add_argument("--epochs", type=int, default=2, help="epochs (default: %(default)s)")
    p.add_argument("--batch", type=int, default=16, help="batch size per rank (default: %(default)s)")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.batch < 1:
        p.error("--epochs and --batch must be at least 1")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        p.error("RANK/WORLD_SIZE are not set: start this script with torchrun "
                "(torchrun --standalone --nproc_per_node=2 ddp.py)")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: PyTorch sees no GPU (torch.cuda.is_available() is False); use --device cpu")
    return a


def main(argv=None, after_step=None):
    """Trains; `after_step(rank, step, device)` is called after every optimizer step."""
    a = parse_args(argv)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ["WORLD_SIZE"])
    if a.device == "cuda":
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    dist.init_process_group(backend)
    say(whoami(f"rank {rank}/{world} (LOCAL_RANK {local_rank}, {backend}, {device})"))

    torch.manual_seed(0)  # the same initial model on every rank (DDP broadcasts rank 0's anyway)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)).to(device)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    data = Regression(256, 8)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=a.batch, sampler=sampler, num_workers=2,
                        multiprocessing_context="fork", persistent_workers=True,
                        worker_init_fn=report_worker,
                        pin_memory=device.type == "cuda")

    losses, step = [], 0
    for epoch in range(a.epochs):
        sampler.set_epoch(epoch)
        total = torch.zeros((), device=device)
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            loss = nn.functional.mse_loss(ddp(x), y)
            loss.backward()
            opt.step()
            total += loss.detach()
            step += 1
            if after_step:
                after_step(rank, step, device)
        dist.all_reduce(total)
        losses.append(total.item() / (world * len(loader)))
        if rank == 0:
            say(f"epoch {epoch}: mean loss {losses[-1]:.4f}")

    # Every rank must end with rank 0's parameters.
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    dist.destroy_process_group()
    if rank != 0:
        return 0
    failures = []
    if any((g - gathered[0]).abs().max().item() != 0 for g in gathered[1:]):
        failures.append("the ranks' parameters differ")
    if not all(torch.isfinite(torch.tensor(losses))):
        failures.append(f"non-finite loss {losses}")
    elif len(losses) > 1 and not losses[-1] < losses[0]:
        failures.append(f"the loss did not go down: {losses}")
    if failures:
        say("FAILED: " + "; ".join(failures))
        return 1
    say("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
