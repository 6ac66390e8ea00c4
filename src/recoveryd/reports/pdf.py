"""PDF from the report's HTML with WeasyPrint (its only home in recoveryd).

Fonts come from the system through fontconfig: Debian's `fonts-noto-cjk`
provides "Noto Sans CJK SC", first in the report stylesheet, so Chinese renders
as text, not tofu. WeasyPrint is imported on first use: it is slow to load.
"""

from __future__ import annotations

import logging


def html_to_pdf(html: str) -> bytes:
    """Render a self-contained HTML document to PDF bytes. Nothing is fetched: the document
    has no external resources, and any URL it might name is refused."""
    import weasyprint

    # WeasyPrint logs every CSS property it does not support at WARNING; they are expected.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)

    def refuse(url: str, *args: object, **kwargs: object) -> dict[str, object]:
        raise ValueError(f"report PDF: refusing to fetch {url}; reports are self-contained")

    document = weasyprint.HTML(string=html, url_fetcher=refuse)
    data: bytes = document.write_pdf()
    return data
