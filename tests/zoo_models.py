"""Reference architectures, written in PyTorch as their papers and reference code define
them: the MLPerf Tiny models (ResNet-8 for CIFAR-10 image classification, MobileNetV1-0.25
for visual wake words, DS-CNN for keyword spotting, the fully connected autoencoder for
anomaly detection) and the LeNet with max pooling of the README. Random weights, fixed
seed; BatchNorm running statistics come from forward passes in training mode on random
data (:func:`settle_bn`), so the folded scales are those of a network that has seen data.

Each factory is usable as ``tests/zoo_models.py:FACTORY`` for
``compiler.frontend.user_model.import_model`` / ``python -m compiler import``. Only torch
is imported here (tests and ``bench/zoo.py`` share these definitions).

Where PyTorch cannot say what the Keras reference code says, the usual PyTorch port is
written: ``padding="same"`` with stride 2 (one row/column more at the bottom/right in
TensorFlow) is ``padding=1`` on both sides.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def settle_bn(model: nn.Module, input_shape, seed: int = 0, batches: int = 4,
              batch: int = 16) -> nn.Module:
    """Running statistics of every BatchNorm from ``batches`` forward passes in training
    mode on seeded standard-normal inputs of ``input_shape`` (C, H, W) or (F,); returns
    the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None           # cumulative average over the passes
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn((batch,) + tuple(input_shape), generator=g))
    return model.eval()


# ----------------------------------------------------------------------------- ResNet-8

def _conv_bn(ci, co, k, stride=1):
    return nn.Sequential(nn.Conv2d(ci, co, k, stride=stride, padding=k // 2), nn.BatchNorm2d(co))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with BN (ReLU between), a 1x1 conv shortcut when the shape changes,
    add, ReLU (resnet_v1_eembc)."""

    def __init__(self, ci, co, stride):
        super().__init__()
        self.conv1 = _conv_bn(ci, co, 3, stride)
        self.conv2 = _conv_bn(co, co, 3)
        self.shortcut = (nn.Conv2d(ci, co, 1, stride=stride) if stride != 1 or ci != co
                         else nn.Identity())

    def forward(self, x):
        y = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(y + self.shortcut(x))


class ResNet8(nn.Module):
    """MLPerf Tiny image classification (CIFAR-10, 32x32x3): conv 16 3x3 + BN + ReLU, three
    stacks of one residual block (16, 32, 64 filters, stride 1, 2, 2), average pooling
    over the 8x8 map, Dense 10."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 16, 3), nn.ReLU())
        self.stack1 = ResidualBlock(16, 16, 1)
        self.stack2 = ResidualBlock(16, 32, 2)
        self.stack3 = ResidualBlock(32, 64, 2)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stack3(self.stack2(self.stack1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet8(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return settle_bn(ResNet8(), (3, 32, 32), seed)


# ----------------------------------------------------------------------------- MobileNetV1

#: (output channels, stride) of the 13 depthwise-separable blocks of MobileNetV1 at width 1
MOBILENET_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def _conv_bn_relu(ci, co, k, stride, groups=1):
    return nn.Sequential(nn.Conv2d(ci, co, k, stride=stride, padding=k // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(co), nn.ReLU())


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU."""

    def __init__(self, ci, co, stride):
        super().__init__()
        self.dw = _conv_bn_relu(ci, ci, 3, stride, groups=ci)
        self.pw = _conv_bn_relu(ci, co, 1, 1)

    def forward(self, x):
        return self.pw(self.dw(x))


class MobileNetV1(nn.Module):
    """MobileNetV1 at width ``alpha``: conv 3x3 stride 2 + BN + ReLU, 13 depthwise-separable
    blocks, average pooling over the final map, Dense. MLPerf Tiny visual wake words:
    alpha 0.25, 96x96x3, 2 classes (channels 8, 16, 32, 32, 64, 64, 128 x6, 256, 256;
    final map 3x3)."""

    def __init__(self, alpha=0.25, classes=2, final_map=3):
        super().__init__()
        c = int(32 * alpha)
        self.stem = _conv_bn_relu(3, c, 3, 2)
        blocks = []
        for width, stride in MOBILENET_V1_BLOCKS:
            blocks.append(DepthwiseSeparable(c, int(width * alpha), stride))
            c = int(width * alpha)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d(final_map)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def mobilenet_v1_025(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return settle_bn(MobileNetV1(), (3, 96, 96), seed)


# ----------------------------------------------------------------------------- DS-CNN

def dscnn(classes=12, c=64, blocks=4):
    """MLPerf Tiny KWS DS-CNN (49x10x1 spectrograms): conv (10, 4) stride 2 pad (5, 1) + BN
    + ReLU, 4 x (dw 3x3 + pw 1x1, each + BN + ReLU), global average pool over the 25 x 5
    map, Linear(64, 12)."""
    layers = [nn.Conv2d(1, c, (10, 4), stride=(2, 2), padding=(5, 1), bias=False),
              nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(blocks):
        layers += [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                   nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    return nn.Sequential(*layers, nn.AvgPool2d((25, 5)), nn.Flatten(), nn.Linear(c, classes))


def dscnn_settled(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return settle_bn(dscnn(), (1, 49, 10), seed)


# ----------------------------------------------------------------------------- autoencoder

def autoencoder(features=640, hidden=128, code=8, depth=4):
    """MLPerf Tiny anomaly detection (ToyADMOS, 640 = 5 frames x 128 mel bins): ``depth``
    x (Dense 128 + BN + ReLU), Dense 8 + BN + ReLU, ``depth`` x (Dense 128 + BN + ReLU),
    Dense 640."""
    sizes = [features] + [hidden] * depth + [code] + [hidden] * depth
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, features))


def autoencoder_settled(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return settle_bn(autoencoder(), (640,), seed)


# ----------------------------------------------------------------------------- LeNet

class LeNet(nn.Module):
    """The README's LeNet (28x28x1): conv 5x5 + ReLU + MaxPool2d(2), twice, Dense 64, Dense."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 64), nn.ReLU(),
                                        nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return LeNet().eval()


#: name -> (factory, input shape (C, H, W) or (F,), what it is)
ZOO = {
    "resnet8": (resnet8, (3, 32, 32), "MLPerf Tiny image classification ResNet-8"),
    "mobilenet_v1_025": (mobilenet_v1_025, (3, 96, 96), "MLPerf Tiny visual wake words MobileNetV1-0.25"),
    "dscnn": (dscnn_settled, (1, 49, 10), "MLPerf Tiny keyword spotting DS-CNN"),
    "autoencoder": (autoencoder_settled, (640,), "MLPerf Tiny anomaly detection FC autoencoder"),
    "lenet": (lenet, (1, 28, 28), "LeNet with MaxPool2d (README)"),
}
