"""a2a_temporal: temporal generation by flowing from the previous piece to the next.

Flow time ``t`` lies in [0, 1]; ``t = 0`` is the source (an embedding of the previous actions or
the previous frame, or noise for the baselines) and ``t = 1`` the target.
"""
__version__ = "0.1.0"
