"""ACGAN (Odena et al. 2017): D names the class of every image, real or generated, as well as judging it.

What it shows: G gets the label as CGAN's does, but D does not; D has a second head that
predicts the class, and both players are scored on it.  One row of the sample grid per digit
class; the rows separate after a few hundred steps.

    python examples/acgan.py                    # 400 steps: about 3 minutes on 2 CPU cores; writes runs/acgan/

Equations -> lines:
  L_S = E[log P(S=real|x)] + E[log P(S=fake|G(z,c))]     the adversarial loss (any --loss), losses.py
  L_C = E[log P(C=c|x)] + E[log P(C=c|G(z,c))]           tinygan/gan/losses.py  class_nll (= -one term)
  D maximises L_S + L_C                                  tinygan/gan/steps.py  d_step (Loss_AC_D)
  G maximises L_C - L_S                                  steps.py  g_step (Loss_AC_G)
  D's two heads on one body                              tinygan/gan/models.py  ACGANDiscriminator
Afterwards try
  tinygan sample --checkpoint runs/acgan/checkpoint.npz --label 7 --n 16 --out sevens.png
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 400, "runs/acgan")
train(TrainConfig(model="acgan", loss="nonsaturating", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=100, device=args.device, num_samples=80),
      overwrite=args.overwrite)
print(f"see {args.out}/samples/: row r shows class r")
