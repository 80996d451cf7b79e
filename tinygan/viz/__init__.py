"""Pictures without a display: image grids, GIFs and loss curves (Pillow; matplotlib when installed)."""
from tinygan.viz.images import images_to_uint8, make_grid, save_gif, save_image_grid
from tinygan.viz.curves import save_loss_curves

__all__ = ["images_to_uint8", "make_grid", "save_image_grid", "save_gif", "save_loss_curves"]
