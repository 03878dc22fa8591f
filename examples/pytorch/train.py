#!/usr/bin/env python3
"""Training workloads that hit "Memory access fault by GPU ... Page not present"
on RDNA1/RDNA2 GPUs in the field, in one small script.

    rmcp run -- python3 examples/pytorch/train.py --device cuda
    python3 examples/pytorch/train.py --device cpu --steps 2

Workloads:
  eeg-conv     EEG-style spatial Conv2d(1, 32, (64, 1)) over 64 electrodes, then squeeze
  yolo-conv    YOLO-style Conv/BatchNorm/LeakyReLU backbone with strided downsampling
  attention    a transformer encoder (multi-head self-attention + MLP)
  autocast     mixed precision (float16 on the GPU with a grad scaler, bfloat16 on the CPU)
  dataloader   a DataLoader with pin_memory=True (pinning only when the device is a GPU)
  memory       allocate/copy/free stress loop over many sizes, pinned host buffers on a GPU

Prints one line per workload and a final "ok"; exits 0 on success, 1 when a
result is wrong (non-finite loss, bad checksum), 2 on bad arguments.
On ROCm builds of PyTorch the GPU device is still called "cuda".
"""

import argparse
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    p.add_argument("--device", choices=["cpu", "cuda"], default=default,
                   help="cpu or cuda (the AMD GPU on ROCm builds); default: %(default)s")
    p.add_argument("--steps", type=int, default=20, help="training steps per workload (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.steps < 1 or a.batch < 1:
        p.error("--steps and --batch must be at least 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: PyTorch sees no GPU (torch.cuda.is_available() is False); use --device cpu")
    return a


def describe(device):
    hip = getattr(torch.version, "hip", None)
    text = f"torch {torch.__version__}, {'HIP ' + hip if hip else 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU build'}, device {device}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        arch = getattr(props, "gcnArchName", None)
        text += f" = {props.name}" + (f" ({arch})" if arch else "")
    return text


class Failed(Exception):
    pass


def check_loss(name, loss):
    v = float(loss)
    if v != v or v in (float("inf"), float("-inf")):
        raise Failed(f"{name}: loss is not finite ({v})")
    return v


def train(name, model, make_batch, loss_fn, args, device, opt=None):
    model.to(device).train()
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    first = last = None
    t0 = time.perf_counter()
    for _ in range(args.steps):
        x, y = make_batch()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        last = check_loss(name, loss)
        first = last if first is None else first
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return f"{args.steps} steps, loss {first:.4f} -> {last:.4f}, {time.perf_counter() - t0:.2f} s"


# --- eeg-conv --------------------------------------------------------------------------------------

class EEGNetish(nn.Module):
    """Temporal conv, then the spatial Conv2d(1, 32, (64, 1)) that collapses the
    64 electrodes, then squeeze(2): the pattern from EEG decoding models."""

    def __init__(self, electrodes=64, classes=4):
        super().__init__()
        self.temporal = nn.Conv2d(1, 1, (1, 25), padding=(0, 12), bias=False)
        self.spatial = nn.Conv2d(1, 32, (electrodes, 1), bias=False)
        self.bn = nn.BatchNorm1d(32)
        self.head = nn.Linear(32, classes)

    def forward(self, x):                     # x: (N, 1, 64, T)
        x = self.spatial(self.temporal(x))    # (N, 32, 1, T)
        x = x.squeeze(2)                      # (N, 32, T)
        x = F.elu(self.bn(x))
        x = F.avg_pool1d(x, 4).mean(-1)       # (N, 32)
        return self.head(x)


def eeg_conv(args, device):
    def batch():
        x = torch.randn(args.batch, 1, 64, 256, device=device)
        y = torch.randint(0, 4, (args.batch,), device=device)
        return x, y
    return train("eeg-conv", EEGNetish(), batch, F.cross_entropy, args, device)


# --- yolo-conv -------------------------------------------------------------------------------------

def cbl(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True))


class TinyYoloBackbone(nn.Module):
    def __init__(self, anchors=3, classes=8):
        super().__init__()
        self.body = nn.Sequential(
            cbl(3, 16), cbl(16, 32, s=2), cbl(32, 32, k=1), cbl(32, 64, s=2),
            cbl(64, 64, k=1), cbl(64, 128, s=2), cbl(128, 64, k=1), cbl(64, 128))
        self.head = nn.Conv2d(128, anchors * (5 + classes), 1)

    def forward(self, x):
        return self.head(self.body(x))


def yolo_conv(args, device):
    model = TinyYoloBackbone()
    def batch():
        x = torch.rand(args.batch, 3, 128, 128, device=device)
        y = torch.rand(args.batch, 39, 16, 16, device=device)
        return x, y
    return train("yolo-conv", model, batch, F.mse_loss, args, device)


# --- attention -------------------------------------------------------------------------------------

class TinyTransformer(nn.Module):
    def __init__(self, vocab=1000, d=128, heads=4, layers=2, seq=64):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, seq, d))
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers)
        self.out = nn.Linear(d, vocab)
        mask = torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, tokens):
        h = self.emb(tokens) + self.pos[:, : tokens.shape[1]]
        return self.out(self.enc(h, mask=self.mask[: tokens.shape[1], : tokens.shape[1]]))


def lm_loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def attention(args, device):
    def batch():
        t = torch.randint(0, 1000, (args.batch, 65), device=device)
        return t[:, :-1], t[:, 1:]
    model = TinyTransformer()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return train("attention", model, batch, lm_loss, args, device, opt=opt)


# --- autocast --------------------------------------------------------------------------------------

def grad_scaler(device):
    if device.type != "cuda":
        return None
    amp = getattr(torch, "amp", None)
    if amp is not None and hasattr(amp, "GradScaler"):
        try:
            return amp.GradScaler("cuda")
        except TypeError:
            pass
    return torch.cuda.amp.GradScaler()


def autocast(args, device):
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    model = nn.Sequential(TinyYoloBackbone(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(39, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler(device)
    first = last = None
    t0 = time.perf_counter()
    for _ in range(args.steps):
        x = torch.rand(args.batch, 3, 96, 96, device=device)
        y = torch.randint(0, 10, (args.batch,), device=device)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=dtype):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        if logits.dtype != dtype:
            raise Failed(f"autocast: expected {dtype} activations, got {logits.dtype}")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        last = check_loss("autocast", loss)
        first = last if first is None else first
    return f"{args.steps} steps in {str(dtype).replace('torch.', '')}, loss {first:.4f} -> {last:.4f}, {time.perf_counter() - t0:.2f} s"


# --- dataloader ------------------------------------------------------------------------------------

class RandomImages(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, 64, 64, generator=g), i % 10


def dataloader(args, device):
    pin = device.type == "cuda"   # pinned (page-locked) host memory: hipHostMalloc on ROCm
    loader = torch.utils.data.DataLoader(RandomImages(args.batch * args.steps), batch_size=args.batch,
                                         shuffle=True, num_workers=2, pin_memory=pin)
    model = nn.Sequential(cbl(3, 16, s=2), cbl(16, 32, s=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    n = 0
    last = None
    t0 = time.perf_counter()
    for x, y in loader:
        if pin and not x.is_pinned():
            raise Failed("dataloader: pin_memory=True gave an unpinned batch")
        x = x.to(device, non_blocking=pin)
        y = y.to(device, non_blocking=pin)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        last = check_loss("dataloader", loss)
        n += 1
    return f"{n} batches, pin_memory={pin}, loss {last:.4f}, {time.perf_counter() - t0:.2f} s"


# --- memory ----------------------------------------------------------------------------------------

def memory(args, device):
    sizes = [1 << k for k in range(10, 23, 3)]   # 1K .. 4M floats
    rounds = max(2, args.steps)
    moved = 0
    t0 = time.perf_counter()
    for r in range(rounds):
        keep = []
        for s in sizes:
            host = torch.arange(s, dtype=torch.float32)
            if device.type == "cuda":
                host = host.pin_memory()
            dev = host.to(device, non_blocking=True)
            dev.mul_(2).add_(r)
            back = dev.to("cpu")
            expect = (s - 1) * s + r * s    # sum(2i + r) for i < s
            got = float(back.double().sum())
            if abs(got - expect) > 1e-6 * max(1.0, expect):
                raise Failed(f"memory: checksum {got} != {expect} for {s} floats in round {r}")
            moved += 2 * s * 4
            if s <= 1 << 16:
                keep.append(dev)          # some survive the round, most are freed at once
            del host, dev, back
        del keep
        if device.type == "cuda" and r % 2 == 1:
            torch.cuda.empty_cache()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return f"{rounds} rounds, {moved / 2**20:.0f} MiB copied and checked, {time.perf_counter() - t0:.2f} s"


WORKLOADS = [("eeg-conv", eeg_conv), ("yolo-conv", yolo_conv), ("attention", attention),
             ("autocast", autocast), ("dataloader", dataloader), ("memory", memory)]


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    print(describe(device), flush=True)
    try:
        for name, fn in WORKLOADS:
            print(f"{name}: {fn(args, device)}", flush=True)
    except Failed as e:
        print(f"FAILED {e}", flush=True)
        return 1
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
