"""Conditional GAN (Mirza & Osindero 2014): the digit class conditions both networks.

What it shows: with the label fed to G and D, one row of the sample grid per digit class,
so you choose which digit G draws.  The rows separate after a few hundred steps.

    python examples/cgan.py                     # 400 steps: about 2.5 minutes on 2 CPU cores; writes runs/cgan/

Equations -> lines:
  min_G max_D E[log D(x|y)] + E[log(1 - D(G(z|y)|y))]    the non-saturating loss, losses.py
  G(z|y): one-hot y concatenated to z               tinygan/gan/models.py  ConditionalDCGANGenerator
  D(x|y): y as constant feature maps beside x        models.py  ConditionalDCGANDiscriminator
The sample grids have one row per class (models.sample_grid_inputs); afterwards try
  tinygan sample --checkpoint runs/cgan/checkpoint.npz --label 7 --n 16 --out sevens.png
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 400, "runs/cgan")
train(TrainConfig(model="cgan", loss="nonsaturating", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=100, device=args.device, num_samples=80),
      overwrite=args.overwrite)
print(f"see {args.out}/samples/: row r shows class r")
