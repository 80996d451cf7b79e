"""InfoGAN (Chen et al. 2016): latent codes made meaningful by maximising mutual information.

What it shows: without labels, a categorical code c comes to pick a kind of digit and a
continuous code its slant or width, because G is rewarded when a head Q can read c back.

    python examples/infogan.py                  # 400 steps: about 3.5 minutes on 2 CPU cores; writes runs/infogan/

Equations -> lines:
  min_{G,Q} max_D V(D, G) - lambda L_I(G, Q)
  L_I = E[log Q(c|G(z, c))] + H(c) <= I(c; G(z, c))  (the variational lower bound)
      categorical code: cross-entropy of Q's logits  tinygan/gan/losses.py  info_loss
      continuous codes: Gaussian log-likelihood with unit variance (a squared error)
  G(z, c): concat(z, one_hot(c_cat), c_cont)        tinygan/gan/models.py  InfoGANGenerator
  Q shares D's body, its own head                    models.py  InfoGANDiscriminator (return_q=True)
  lambda L_I is added to G's loss; Q's head is trained with G    tinygan/gan/steps.py  g_step
Sample grids: one row per categorical value, the first continuous code from -1 to 1 along the row.
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 400, "runs/infogan")
train(TrainConfig(model="infogan", loss="nonsaturating", ngf=32, ndf=32, nz=62, steps=args.steps,
                  batch_size=args.batch_size, seed=args.seed, out=args.out, sample_every=100, device=args.device,
                  num_samples=80),
      overwrite=args.overwrite)
print(f"see {args.out}/samples/")
