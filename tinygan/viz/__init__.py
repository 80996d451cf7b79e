"""Pictures without a display: image grids, GIFs, loss curves and the toy-distribution figures.

Pillow draws everything; matplotlib (the ``plot`` extra) is used when it is installed.
"""
from tinygan.viz.curves import save_loss_curves
from tinygan.viz.images import images_to_uint8, make_grid, save_gif, save_image_grid
from tinygan.viz.points import save_points_plot
from tinygan.viz.toy import save_field_2d, save_figure1, save_panel

__all__ = ["images_to_uint8", "make_grid", "save_image_grid", "save_gif", "save_loss_curves", "save_points_plot",
           "save_figure1", "save_field_2d", "save_panel"]
