"""DRAGAN (Kodali et al. 2017): the standard GAN with a gradient penalty around the real data.

What it shows: the DCGAN of dcgan_mnist.py trained with the non-saturating loss plus a
penalty that keeps D's gradient near norm 1 at points perturbed around the real digits
(not between real and generated samples, as WGAN-GP does): the paper's remedy for the
sharp D that drives mode collapse.  Second derivatives at work, as in wgan_gp.py.

    python examples/dragan.py                   # 400 steps: about 2.5 minutes on 2 CPU cores; writes runs/dragan/

Equations -> lines:
  L_D = E[softplus(-l(x))] + E[softplus(l(G(z)))]        tinygan/gan/losses.py     DRAGAN (= NonSaturating)
      + lambda E[(||grad_x_hat D(x_hat)||_2 - 1)^2]       tinygan/gan/penalties.py  dragan_penalty
        x_hat = x + alpha 0.5 std(x) u,  u ~ U[0,1)^d, alpha ~ U[0,1]  (the authors' reference code)
  the penalty goes into D's loss only                    tinygan/gan/steps.py      d_step (gp_at="perturbed")
  lambda 10, Adam betas (0.5, 0.9), one D step per G step, layer norm in D   tinygan/gan/recipes.py  DRAGAN
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 400, "runs/dragan")
train(TrainConfig(model="dcgan", loss="dragan", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=100, device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/samples/ (metrics.jsonl has the penalty as 'gp')")
