"""The original GAN (Goodfellow et al. 2014): fully connected G and D on 8 Gaussians on a circle.

What it shows: G's samples (red) moving onto the data (blue) in 2-D, where you can see
every mode, and what the choice of G's loss does to that.

    python examples/gan_toy.py                  # 1500 steps: about 1.5 minutes on 2 CPU cores; writes runs/gan_toy/
    python examples/gan_toy.py --loss minimax --out runs/gan_toy_minimax

Equations -> lines:
  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]        tinygan/gan/losses.py  NonSaturating.d_loss
  D ascends V: minimise softplus(-l(x)) + softplus(l(G(z)))  (l = D's logit, D = sigmoid(l))
  G: minimax form minimises log(1 - D(G(z)))               losses.py  Minimax.g_loss   (--loss minimax)
     non-saturating form maximises log D(G(z))             losses.py  NonSaturating.g_loss
  the MLPs                                                 tinygan/gan/models.py  MLPGenerator, MLPDiscriminator
Open runs/gan_toy/progress.gif: blue = data, red = G(z); try --loss minimax to watch it stall.
"""
from _common import parser

from tinygan.gan import LOSS_PRESETS, LOSSES
from tinygan.run import TrainConfig, train

p = parser(__doc__, 1500, "runs/gan_toy", default_batch=256)
p.add_argument("--loss", default="nonsaturating", choices=[*LOSSES, *LOSS_PRESETS],
               help="the GAN objective (default: %(default)s; minimax is the paper's min-max game, "
                    "tinygan/gan/losses.py)")
args = p.parse_args()
train(TrainConfig(model="mlp", dataset="ring8", loss=args.loss, batch_size=args.batch_size,
                  steps=args.steps, nz=8, lr=1e-3, seed=args.seed, out=args.out, sample_every=min(100, args.steps),
                  checkpoint_every=500, device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/progress.gif")
