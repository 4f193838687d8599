"""Reports written next to the runs they describe (HTML with image grids and tables)."""

from genmed.report.grid import image_grid
from genmed.report.html import Page

__all__ = ["Page", "image_grid"]
