"""Unrolled GAN (Metz et al. 2017): G's loss looks K steps of D's optimizer ahead, on 8 Gaussians on a circle.

What it shows: G is scored against the discriminator it would face after D reacted to it for
K more steps, and the gradient goes back through those K steps (the engine differentiates a
gradient: create_graph=True).  A G that jumps to one mode sees that D would chase it there,
so it spreads over the modes instead of hopping between them.

    python examples/unrolled_gan.py             # 1000 steps, K = 5: about 7 minutes on 2 CPU cores; writes runs/unrolled_gan/

Equations -> lines:
  theta_D^{k+1} = theta_D^k - adam_step(grad L_D(theta_G, theta_D^k))    tinygan/gan/unroll.py  unrolled_parameters
  f_K(theta_G) = L_G(theta_G, theta_D^K(theta_G))                       tinygan/gan/steps.py  g_step (unroll=K)
  D is evaluated at theta_D^K with its own weights untouched             unroll.py  substituted
Open runs/unrolled_gan/progress.gif; compare with --unroll 0.
"""
from _common import parser

from tinygan.run import TrainConfig, train

p = parser(__doc__, 1000, "runs/unrolled_gan", default_batch=256)
p.add_argument("--unroll", type=int, default=5, metavar="K", help="unrolled steps of D (default: %(default)s)")
args = p.parse_args()
train(TrainConfig(model="mlp", dataset="ring8", unroll=args.unroll, batch_size=args.batch_size, steps=args.steps,
                  seed=args.seed, out=args.out, sample_every=min(50, args.steps), checkpoint_every=100,
                  device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/progress.gif")
