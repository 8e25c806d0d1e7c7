"""FlowTransformer: adaLN-Zero identity at init, shapes, strict save/load."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from a2a_temporal.backbone import FlowTransformer, TransformerConfig
from a2a_temporal.pretrained import CheckpointError, load_pretrained


def small(**kw):
    return FlowTransformer(TransformerConfig(in_dim=5, cond_dim=3, preset="tiny", **kw))


def test_every_block_is_identity_at_init():
    torch.manual_seed(0)
    m = small()
    h, c = torch.randn(2, 9, m.config.width), torch.randn(2, m.config.width)
    for blk in m.blocks:
        assert torch.equal(blk(h, c), h)
    # Non-trivial elsewhere: the zeroing did not wipe the attention / MLP weights.
    assert m.blocks[0].attn.qkv.weight.abs().sum() > 0
    assert m(torch.randn(2, 4, 5), torch.rand(2), torch.randn(2, 3, 3)).abs().max() == 0


def test_identity_survives_reset_parameters():
    m = small()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1)
    m.reset_parameters()
    h, c = torch.randn(2, 9, m.config.width), torch.randn(2, m.config.width)
    assert all(torch.equal(blk(h, c), h) for blk in m.blocks)


def perturb(m, scale=0.05):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn_like(p))
    return m


@pytest.mark.parametrize("n,m_tokens", [(1, 1), (7, 3), (13, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtype(n, m_tokens, dtype):
    m = perturb(small()).to(dtype)
    x, t, cond = torch.randn(3, n, 5, dtype=dtype), torch.rand(3, dtype=dtype), torch.randn(3, m_tokens, 3, dtype=dtype)
    out = m(x, t, cond)
    assert out.shape == (3, n, 5) and out.dtype == dtype
    out_none = m(x, t, None)
    assert out_none.shape == (3, n, 5) and not torch.allclose(out, out_none)


def test_condition_and_time_change_the_output():
    m = perturb(small())
    x, cond = torch.randn(2, 4, 5), torch.randn(2, 3, 3)
    a = m(x, torch.zeros(2), cond)
    assert not torch.allclose(a, m(x, torch.ones(2), cond))
    assert not torch.allclose(a, m(x, torch.zeros(2), cond + 1))


def test_bad_time_shape():
    with pytest.raises(ValueError, match=r"\(B,\)"):
        small()(torch.randn(2, 4, 5), torch.rand(2, 1))


def test_save_and_from_pretrained_identical(tmp_path):
    m = perturb(small())
    m.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    m2 = FlowTransformer.from_pretrained(tmp_path / "model")
    x, t, cond = torch.randn(2, 7, 5), torch.rand(2), torch.randn(2, 3, 3)
    assert torch.equal(m.eval()(x, t, cond), m2(x, t, cond))
    assert type(load_pretrained(tmp_path / "model")) is FlowTransformer


@pytest.mark.parametrize("edit,needle", [("drop", "missing keys"), ("add", "unexpected keys")])
def test_loading_with_missing_or_extra_key_names_it(tmp_path, edit, needle):
    small().save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    state = load_file(path)
    if edit == "drop":
        key = "blocks.0.ada.1.weight"
        del state[key]
    else:
        key = "extra.weight"
        state[key] = torch.zeros(1)
    save_file(state, path)
    with pytest.raises(CheckpointError, match=needle) as err:
        FlowTransformer.from_pretrained(tmp_path / "m")
    assert key in str(err.value) and str(path) in str(err.value)


def test_shape_mismatch_and_bad_config(tmp_path):
    small().save_pretrained(tmp_path / "m")
    other = FlowTransformer(TransformerConfig(in_dim=6, cond_dim=3, preset="tiny"))
    (tmp_path / "m" / "model.safetensors").unlink()
    other.save_pretrained(tmp_path / "o")
    (tmp_path / "o" / "model.safetensors").rename(tmp_path / "m" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"has shape .*model expects"):
        FlowTransformer.from_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="config.json"):
        FlowTransformer.from_pretrained(tmp_path / "nowhere")


def test_presets_and_config_errors():
    assert FlowTransformer(TransformerConfig(in_dim=4, preset="small")).config.width == 256
    with pytest.raises(ValueError, match="huge"):
        TransformerConfig(preset="huge")
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(width=100, heads=3)
