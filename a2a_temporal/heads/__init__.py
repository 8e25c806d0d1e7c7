"""Heads: tokenisers around the shared FlowTransformer (robot actions, latent video)."""
