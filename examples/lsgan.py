"""LSGAN (Mao et al. 2017): least-squares targets instead of the log loss, DCGAN on MNIST.

What it shows: the same DCGAN as dcgan_mnist.py trained with a squared error on D's raw
output; compare its losses.png with a log-loss run.

    python examples/lsgan.py                    # 400 steps: about 1.5 minutes on 2 CPU cores; writes runs/lsgan/

Equations -> lines (tinygan/gan/losses.py, class LSGAN):
  min_D 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]      LSGAN.d_loss
  min_G 1/2 E[(D(G(z)) - c)^2]                            LSGAN.g_loss
  a=0, b=1, c=1 ("lsgan")  or the paper's a=-1, b=1, c=0 ("lsgan-pearson": b-c=1, b-a=2 -> Pearson chi^2)
D's output is used raw (no sigmoid): a CGAN/InfoGAN trained with an MSE loss is this loss.
"""
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 400, "runs/lsgan")
train(TrainConfig(model="dcgan", loss="lsgan", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, out=args.out, sample_every=100, device=args.device), overwrite=args.overwrite)
print(f"see {args.out}/samples/")
