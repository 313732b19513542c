"""The workloads this package registers (pyproject.toml, entry-point group ``claimbench.workloads``)."""

from __future__ import annotations

from claimbench.workloads.spec import Config, Data, Param, Workload

PARAMS = (
    Param("blocks", int, 1, low=1, high=4, help="residual blocks"),
    Param("size", int, 8, choices=(8, 16), data=True, help="image side: 8 (the digits as they are) or 16 (upsampled)"),
    Param("augment", bool, True, help="random shifts of up to one pixel in training"),
)


def data(cfg: Config) -> Data:
    from tiny_resnet.data import load_digits_splits

    s = load_digits_splits(cfg["size"], cfg.spec.n_samples, cfg.data_seed)
    return Data(*s["train"], *s["val"], *s["test"], n_outputs=10)


def model(cfg: Config, data):
    from tiny_resnet.model import TinyResNet

    return TinyResNet(data.input_shape[0], data.n_outputs, cfg.spec.width, cfg["blocks"], cfg.spec.batchnorm)


def augment(x, generator):
    from tiny_resnet.data import random_shift

    return random_shift(x, generator)


def train(params, ctx):
    from tiny_resnet.loop import train as loop

    loop(params, ctx)


#: Components: claimbench's engine trains the model on the data (optimizer, schedule, clipping, ...).
COMPONENTS = Workload(
    name="tiny_resnet.components", task="classification", params=PARAMS[:2], uses=("batchnorm", "width", "n_samples"),
    description="a small ResNet with BatchNorm on sklearn digits; claimbench's engine, random-shift augmentation",
    data=data, model=model, augment=augment)

#: A training function: the team's own loop (its DataLoader, augmentation and SGD) trains it.
LOOP = Workload(
    name="tiny_resnet.loop", task="classification", params=PARAMS,
    uses=("batchnorm", "width", "n_samples", "lr", "momentum", "weight_decay", "batch_size"),
    description="the same ResNet trained by the package's own loop (DataLoader with augmentation, SGD)",
    train=train)
