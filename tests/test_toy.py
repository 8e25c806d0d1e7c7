"""The bimodal toy: known modes, and a mode-fraction report that is right for exact samplers."""
import torch

from a2a_temporal.toy import ToyDataset, ToySystem, mode_fractions


def test_bimodal_dataset_draws_both_modes_equally():
    system = ToySystem(branch_offset=0.5)
    data = ToyDataset(system, 4000, seed=0)
    modes = system.modes_of(data.prev)  # (N, 2, 2)
    assert torch.allclose(modes[:, 0] - modes[:, 1], torch.tensor([0.0, 1.0]).expand(4000, 2))
    f = mode_fractions(data.next, modes, radius=0.1)  # the data itself: an exact sampler
    assert abs(f["mode_a"] - 0.5) < 0.03 and abs(f["mode_b"] - 0.5) < 0.03
    assert f["between"] == 0.0 and f["other"] == 0.0
    deterministic = ToySystem()
    assert torch.equal(ToyDataset(deterministic, 10, seed=1).next, deterministic.step(ToyDataset(deterministic, 10,
                                                                                                seed=1).prev))


def test_mode_fractions_of_known_samplers():
    g = torch.Generator().manual_seed(0)
    n = 2000
    modes = torch.stack([torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)], dim=1)
    modes[:, 1] = modes[:, 0] + torch.tensor([0.0, 1.0])
    pick = torch.randint(0, 2, (n,), generator=g)
    exact = modes[torch.arange(n), pick] + 0.01 * torch.randn(n, 2, generator=g)
    f = mode_fractions(exact, modes, radius=0.15)
    assert abs(f["mode_a"] - (pick == 0).sum().item() / n) < 1e-9
    assert abs(f["mode_a"] + f["mode_b"] - 1.0) < 1e-9
    averaged = modes.mean(dim=1)  # what a deterministic regressor of the mean would answer
    f = mode_fractions(averaged, modes, radius=0.15)
    assert f == {"mode_a": 0.0, "mode_b": 0.0, "between": 1.0, "other": 0.0}
    far = modes[:, 0] + torch.tensor([3.0, 0.0])
    assert mode_fractions(far, modes, radius=0.15)["other"] == 1.0
