"""Relativistic GANs (Jolicoeur-Martineau 2019): D judges whether real data look *more* real than fakes.

What it shows: the same DCGAN as dcgan_mnist.py, but D's score of a real image is read
against the fakes' (and vice versa), so G's loss also pushes real scores down: G's step
needs D's scores of a real batch too.  RaGAN (the default) compares each sample with the
other batch's mean score; RSGAN with one paired sample; RaLSGAN is RaGAN with squares.

    python examples/relativistic.py             # 400 steps: about 1.5 minutes on 2 CPU cores; writes runs/relativistic/
    python examples/relativistic.py --loss rsgan --out runs/rsgan

Equations -> lines (tinygan/gan/losses.py; l = D's raw output):
  RSGAN    L_D = E[-log sigmoid(l(x_r) - l(x_f))]                    RSGAN.d_loss
           L_G = E[-log sigmoid(l(x_f) - l(x_r))]                    RSGAN.g_loss
  RaGAN    L_D = E[-log sigmoid(l(x_r) - E l(x_f))] + E[-log(1 - sigmoid(l(x_f) - E l(x_r)))]   RaGAN.d_loss
           L_G = the same with real and fake swapped                 RaGAN.g_loss
  RaLSGAN  L_D = E[(l(x_r) - E l(x_f) - 1)^2] + E[(l(x_f) - E l(x_r) + 1)^2]                    RaLSGAN.d_loss
  G's step scores the last critic batch's real images           tinygan/gan/steps.py  g_step (real=)
  Adam betas (0.5, 0.999), one D step per G step: DCGAN's recipe, as in the paper (tinygan/gan/recipes.py)
"""
from _common import parser

from tinygan.run import TrainConfig, train

p = parser(__doc__, 400, "runs/relativistic")
p.add_argument("--loss", default="ragan", choices=["rsgan", "ragan", "ralsgan"],
               help="the relativistic objective (default: %(default)s; tinygan/gan/losses.py)")
args = p.parse_args()
train(TrainConfig(model="dcgan", loss=args.loss, ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=100, device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/samples/")
