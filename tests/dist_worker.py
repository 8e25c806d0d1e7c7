"""Trains the 2-D toy for a few iterations; launched by tests under 1 or 2 processes."""
import sys
from pathlib import Path

import torch

from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.flow import ObjectiveConfig
from a2a_temporal.toy import ToyDataset, ToyFlowModel, ToyModelConfig, ToySystem
from a2a_temporal.training import Trainer, TrainConfig


def main(out: str, batch_size: int, steps: int) -> None:
    torch.manual_seed(0)
    # Regression has no sampling noise, so 1 process x 2b and 2 processes x b see identical
    # per-sample losses and the DDP gradient average must equal the single-process gradient.
    model = ToyFlowModel(ToyModelConfig(objective=ObjectiveConfig(name="regression"),
                                        backbone=TransformerConfig(in_dim=2, preset="tiny", width=32, depth=1)))
    # Fixed initial weights regardless of the process (the trainer reseeds per rank afterwards).
    cfg = TrainConfig(iterations=steps, batch_size=batch_size, lr=1e-2, warmup_iterations=0, ema_decay=0.0,
                      log_every=1, seed=0)
    data = ToyDataset(ToySystem(), 64, seed=0)
    Trainer(model, data, cfg, Path(out), progress=False).fit()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
