"""Evaluation of the method against scenes with ground truth (``python -m engine eval``).

- :mod:`.scenes`: load a scene folder in the ``$DH_SCENES/`` format.
- :mod:`.metrics`: IoU, L1, PSNR (whole image or inside a mask), LPIPS where its weights exist.
- :mod:`.segmenters`: the object's mask in an edited frame, behind one interface
  (``Segmenter.segment(image, prompt) -> bool mask``): the perception stack when its weights
  resolve, a colour segmenter for synthetic scenes with plain-coloured objects otherwise.
- :mod:`.runner`: prepare + edit every frame, the two baselines, the cycle consistency.
- :mod:`.report`: JSON, Markdown tables and the contact sheet.

Nothing here is needed to edit a photo; it only measures.
"""
