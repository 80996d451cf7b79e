"""WGAN-GP (Gulrajani et al. 2017): the Lipschitz constraint as a gradient penalty.

What it shows: second derivatives at work.  The penalty is a function of the critic's
gradient, so training the critic differentiates a gradient (tinygan.grad with
create_graph=True), the path tinygan's gradgradcheck tests check.

    python examples/wgan_gp.py                  # 100 steps: about 3 minutes on 2 CPU cores; writes runs/wgan_gp/

Equations -> lines:
  L = E[D(G(z))] - E[D(x)] + lambda E[(||grad_x_hat D(x_hat)||_2 - 1)^2]
      critic part                                 tinygan/gan/losses.py     WGANGP.d_loss
      x_hat = eps x + (1 - eps) G(z), eps ~ U[0,1] tinygan/gan/penalties.py  gradient_penalty
      grad_x_hat D(x_hat) with create_graph=True  (tinygan.grad: the penalty is differentiated again)
  the penalty is added to the critic's loss only  tinygan/gan/steps.py      d_step
  Adam lr 1e-4, betas (0, 0.9), n_critic 5, lambda 10, critic without batch norm (layer norm)
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 100, "runs/wgan_gp")
train(TrainConfig(model="dcgan", loss="wgan-gp", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=25, device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/samples/ (metrics.jsonl has the penalty as 'gp')")
