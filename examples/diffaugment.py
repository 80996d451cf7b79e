"""DiffAugment (Zhao et al. 2020): D judges randomly shifted, cut-out and recoloured images, real and fake alike.

What it shows: a DCGAN whose discriminator never sees an image as it is.  Every batch D
judges, in D's step and in G's, goes through the same kind of random transformation T, and
G learns through T (it is differentiable), so G's samples stay clean: the augmentations do
not leak into them.

    python examples/diffaugment.py              # 400 steps: about 3 minutes on 2 CPU cores; writes runs/diffaugment/

Equations -> lines:
  L_D = loss.d_loss(D(T(x)), D(T(G(z))))                 tinygan/gan/steps.py  d_step (augment=)
  L_G = loss.g_loss(D(T(G(z))))                          steps.py  g_step (augment=)
  T = translation (1/8 of the side), cutout (half the side), color (brightness, saturation, contrast)
                                                         tinygan/gan/augment.py  DiffAugment
"""
from _common import parser

from tinygan.run import TrainConfig, train

p = parser(__doc__, 400, "runs/diffaugment")
p.add_argument("--policy", default="translation,cutout,color", metavar="POLICY",
               help="the augmentations, comma-separated (default: %(default)s)")
args = p.parse_args()
train(TrainConfig(model="dcgan", diffaugment=args.policy, ngf=32, ndf=32, steps=args.steps,
                  batch_size=args.batch_size, seed=args.seed, out=args.out, sample_every=100, device=args.device),
      overwrite=args.overwrite)
print(f"see {args.out}/samples/")
