"""Reference PyTorch I3D for tests: the structure of piergiaj/pytorch-i3d `InceptionI3d`.

Module names, and so state-dict keys (`Mixed_4b.b1b.conv3d.weight`, `Conv3d_1a_7x7.bn.running_var`,
`logits.conv3d.bias`, ...), match that port, so its real checkpoints load with
`load_state_dict(strict=True)`. The padding rule (TF "SAME", zero padding computed from the input
size in forward, also before max pools), BatchNorm eps 1e-3 and the AvgPool3d (2, 7, 7) / stride 1
-> dropout -> 1x1x1 logits head follow the port. `avg_pool_window` is an addition so tests can run
inputs smaller than 224x224; it carries no parameters.

Imports torch at module level: import this only after `pytest.importorskip("torch")`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Output channels of each Inception block's branches (b0, b1a, b1b, b2a, b2b, b3b) and its input.
_MIXED = [
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
]


def _tf_same_pad(sizes, kernel, stride) -> tuple[int, ...]:
    """F.pad argument (w_lo, w_hi, h_lo, h_hi, t_lo, t_hi) for TF "SAME" padding of (t, h, w)."""
    pads = []
    for size, k, s in zip(sizes, kernel, stride, strict=True):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(p for pair in reversed(pads) for p in pair)


class MaxPool3dSamePadding(nn.MaxPool3d):
    """MaxPool3d after zero "SAME" padding computed from the input size."""

    def forward(self, x):
        x = F.pad(x, _tf_same_pad(x.shape[2:], self.kernel_size, self.stride))
        return super().forward(x)


class Unit3D(nn.Module):
    """Conv3d (no built-in padding) + BatchNorm3d + activation."""

    def __init__(
        self,
        in_channels,
        output_channels,
        kernel_shape=(1, 1, 1),
        stride=(1, 1, 1),
        activation_fn=F.relu,
        use_batch_norm=True,
        use_bias=False,
    ):
        super().__init__()
        self._kernel_shape = tuple(kernel_shape)
        self._stride = tuple(stride)
        self._activation_fn = activation_fn
        self._use_batch_norm = use_batch_norm
        self.conv3d = nn.Conv3d(
            in_channels, output_channels, self._kernel_shape, self._stride, padding=0, bias=use_bias
        )
        if use_batch_norm:
            self.bn = nn.BatchNorm3d(output_channels, eps=0.001, momentum=0.01)

    def forward(self, x):
        x = F.pad(x, _tf_same_pad(x.shape[2:], self._kernel_shape, self._stride))
        x = self.conv3d(x)
        if self._use_batch_norm:
            x = self.bn(x)
        if self._activation_fn is not None:
            x = self._activation_fn(x)
        return x


class InceptionModule(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = out_channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3))
        self.b3a = MaxPool3dSamePadding(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b)

    def forward(self, x):
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))],
            dim=1,
        )


class InceptionI3d(nn.Module):
    """I3D up to the logits; forward returns [N, num_classes, T'] like the port."""

    def __init__(self, num_classes=400, in_channels=3, avg_pool_window=(2, 7, 7)):
        super().__init__()
        # Registered in forward order under the port's end-point names (its state-dict prefixes).
        self.add_module("Conv3d_1a_7x7", Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2)))
        self.add_module("MaxPool3d_2a_3x3", MaxPool3dSamePadding((1, 3, 3), (1, 2, 2)))
        self.add_module("Conv3d_2b_1x1", Unit3D(64, 64))
        self.add_module("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3)))
        self.add_module("MaxPool3d_3a_3x3", MaxPool3dSamePadding((1, 3, 3), (1, 2, 2)))
        for name, in_ch, out_ch in _MIXED:
            if name == "Mixed_4b":
                self.add_module("MaxPool3d_4a_3x3", MaxPool3dSamePadding((3, 3, 3), (2, 2, 2)))
            if name == "Mixed_5b":
                self.add_module("MaxPool3d_5a_2x2", MaxPool3dSamePadding((2, 2, 2), (2, 2, 2)))
            self.add_module(name, InceptionModule(in_ch, out_ch))
        self.avg_pool = nn.AvgPool3d(kernel_size=tuple(avg_pool_window), stride=(1, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(
            384 + 384 + 128 + 128,
            num_classes,
            activation_fn=None,
            use_batch_norm=False,
            use_bias=True,
        )

    def forward(self, x):
        """x: [N, 3, T, H, W] -> logits [N, num_classes, T']."""
        for name, module in self.named_children():
            if name == "avg_pool":
                break
            x = module(x)
        x = self.logits(self.dropout(self.avg_pool(x)))
        return x.squeeze(3).squeeze(3)


def fvd_features(model: InceptionI3d, clips_nthwc: torch.Tensor) -> torch.Tensor:
    """Channels-last clips [N, T, H, W, 3] in [-1, 1] -> time-averaged logits [N, num_classes]."""
    with torch.no_grad():
        return model(clips_nthwc.permute(0, 4, 1, 2, 3)).mean(dim=2)


def random_reference(
    seed: int, calibration_clips: torch.Tensor, avg_pool_window=(2, 7, 7)
) -> InceptionI3d:
    """An InceptionI3d in eval mode with random weights and non-trivial BatchNorm state.

    Random running statistics unrelated to the activations would let the activation scale drift
    through ~20 layers, so the BN statistics are first set to the batch statistics of
    `calibration_clips` ([N, T, H, W, 3]), one train-mode pass with momentum 1, then the BN affine
    parameters are randomised.
    """
    torch.manual_seed(seed)
    model = InceptionI3d(avg_pool_window=avg_pool_window)
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    for bn in batch_norms:
        bn.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(calibration_clips.permute(0, 4, 1, 2, 3))
        for bn in batch_norms:
            bn.momentum = 0.01
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
        model.logits.conv3d.bias.uniform_(-0.5, 0.5)
    return model.eval()
