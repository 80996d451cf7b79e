"""The original GAN (Goodfellow et al. 2014): fully connected G and D on 8 Gaussians on a circle.

    python examples/gan_toy.py                  # ~1 minute on 2 CPU cores; writes runs/gan_toy/

Equations -> lines:
  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]        tinygan/gan/losses.py  NonSaturating.d_loss
  D ascends V: minimise softplus(-l(x)) + softplus(l(G(z)))  (l = D's logit, D = sigmoid(l))
  G: minimax form minimises log(1 - D(G(z)))               losses.py  Minimax.g_loss   (--loss minimax)
     non-saturating form maximises log D(G(z))             losses.py  NonSaturating.g_loss
  the MLPs                                                 tinygan/gan/models.py  MLPGenerator, MLPDiscriminator
Open runs/gan_toy/progress.gif: blue = data, red = G(z); try --loss minimax to watch it stall.
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(1500, "runs/gan_toy")
train(TrainConfig(model="mlp", dataset="ring8", loss="nonsaturating", batch_size=256, steps=args.steps,
                  nz=8, lr=1e-3, seed=args.seed, out=args.out, sample_every=100, checkpoint_every=500,
                  device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/progress.gif")
