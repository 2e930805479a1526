"""A function profiled as a model: ``flopmeter.profile(Fn(torch.linalg.det), (a,))``."""

from torch import nn


class Fn(nn.Module):
    """A module whose forward calls ``fn`` with its inputs."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, *args):  # type: ignore[no-untyped-def]
        return self.fn(*args)
