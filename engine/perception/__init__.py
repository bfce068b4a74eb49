"""Perception: what turns a bare photo into the method's inputs (paper sections 5 and 5.1).

- :mod:`.depth`    metric z-depth from an image (ZoeDepth by default, Depth Anything V2 metric option)
- :mod:`.detect`   ranked object candidates for a text query (Grounding DINO boxes, then SAM masks)
- :mod:`.segment`  SAM masks from boxes or clicked points; safe checkpoint loading
- :mod:`.removal`  the object removed from the photo (classical fill by default, diffusers option)
- :mod:`.inputs`   all of the above combined into the inputs of ``prepare``
- :mod:`.tiny`     tiny random-weight models in the real formats (tests, CLI)

Heavy libraries (torch, transformers, segment-anything, diffusers) are imported inside functions.
"""
