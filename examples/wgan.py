"""WGAN (Arjovsky et al. 2017): a critic estimating the Wasserstein-1 distance, with weight clipping.

What it shows: a critic (no sigmoid) whose -Loss_D estimates the distance between the data
and G's samples; watch it fall in losses.png as the digits improve.

    python examples/wgan.py                     # 150 steps: about 2 minutes on 2 CPU cores; writes runs/wgan/

Equations -> lines:
  W(p_r, p_g) = sup_{||f||_L <= 1} E_x[f(x)] - E_z[f(G(z))]   (Kantorovich-Rubinstein)
  critic minimises E[f(G(z))] - E[f(x)]             tinygan/gan/losses.py  WGAN.d_loss
  G minimises -E[f(G(z))]                           losses.py  WGAN.g_loss
  f kept K-Lipschitz by clipping weights to [-c, c] tinygan/gan/penalties.py  weight_clip_ (c = 0.01)
  5 critic steps per G step, RMSprop lr 5e-5        tinygan/gan/recipes.py  WGAN; steps.py d_step
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 150, "runs/wgan")
train(TrainConfig(model="dcgan", loss="wgan", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=50, device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/samples/ and {args.out}/losses.png (-Loss_D estimates W)")
