"""The minibatch standard-deviation layer (Karras et al. 2018) on 25 Gaussians on a grid.

What it shows: D gets one more feature, the spread of the batch its sample came in, so a
generator that puts all its samples in a few modes is told apart by its low spread.  The
fully connected GAN on grid25 with the layer before D's last layer.

    python examples/mbstd.py                    # 1500 steps: about 2 minutes on 2 CPU cores; writes runs/mbstd/

Equations -> lines:
  groups of G = 4 samples, n mod (N/G) names the group    tinygan/gan/mbstd.py  MinibatchStdDev
  s = mean over features of sqrt(Var_group[h] + 1e-8)     MinibatchStdDev.forward
  D's last layer sees concat(h, s)                        tinygan/gan/models.py  MLPDiscriminator (mbstd=True)
Open runs/mbstd/progress.gif; compare with --no-mbstd.
"""
from _common import parser

from tinygan.run import TrainConfig, train

p = parser(__doc__, 1500, "runs/mbstd", default_batch=256)
p.add_argument("--no-mbstd", dest="mbstd", action="store_false", help="train without the layer, to compare")
args = p.parse_args()
train(TrainConfig(model="mlp", dataset="grid25", mbstd=args.mbstd, batch_size=args.batch_size, steps=args.steps,
                  seed=args.seed, out=args.out, sample_every=min(100, args.steps), checkpoint_every=500,
                  device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/progress.gif")
