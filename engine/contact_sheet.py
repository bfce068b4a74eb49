"""Contact sheets: images side by side in a labelled grid (batch.py's frames, the evaluation's
input | reconstruction | no guidance | edit | truth rows)."""
from __future__ import annotations

from pathlib import Path

from .images import to_uint8
from .output import atomic_output


def contact_sheet(rows, columns=(), scale: int = 1, path=None, gap: int = 4, margin: int | None = None):
    """Images in a grid: ``rows`` is a list of (label, [images]) with images float (H, W, 3) in
    [0, 1] or None (drawn grey); ``columns`` names the columns in a header line (none: no header);
    a label column is drawn when any label is non-empty. Tiles are upscaled by ``scale`` with
    nearest neighbour so pixels stay visible; ``gap`` pixels between tiles, ``margin`` (default:
    the gap) around them. Returns the PIL image; writes it atomically to ``path`` when given."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("contact sheet: no rows")
    images = [im for _, ims in rows for im in ims if im is not None]
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    ch, cw = h * scale, w * scale
    margin = gap if margin is None else margin
    label_w = 110 if any(label for label, _ in rows) else 0
    head_h = 18 if columns else 0
    ncol = len(columns) if columns else max(len(ims) for _, ims in rows)
    nrow = len(rows)
    sheet = Image.new("RGB", (label_w + ncol * cw + (ncol - 1) * gap + 2 * margin,
                              head_h + nrow * ch + (nrow - 1) * gap + 2 * margin), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns or ()):
        draw.text((label_w + margin + c * (cw + gap), 3), name, fill="black")
    for r, (label, ims) in enumerate(rows):
        y = head_h + margin + r * (ch + gap)
        if label:
            draw.text((4, y + ch // 2 - 6), label, fill="black")
        for c, im in enumerate(ims[:ncol]):
            x = label_w + margin + c * (cw + gap)
            if im is None:
                tile = Image.new("RGB", (cw, ch), (128, 128, 128))
            else:
                a = to_uint8(im)
                tile = Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST)
            sheet.paste(tile, (x, y))
    if path is not None:
        with atomic_output(Path(path)) as tmp:
            sheet.save(tmp, format="PNG")
    return sheet
