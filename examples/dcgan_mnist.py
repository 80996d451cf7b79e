"""DCGAN on the bundled MNIST digits, written out as an explicit loop (the recipe of the DCGAN paper).

    python examples/dcgan_mnist.py --steps 300          # a few minutes on 2 CPU cores

This is what ``tinygan train`` does (see tinygan/gan/steps.py, d_step and g_step), without
the logging, checkpoints and resume, so that every equation sits next to its line.
"""
import argparse

import numpy as np

import tinygan as tg
import tinygan.functional as F
from tinygan import optim
from tinygan.data import DataLoader, get_dataset
from tinygan.gan import DCGANDiscriminator, DCGANGenerator
from tinygan.gan.recipes import DCGAN
from tinygan.viz import save_image_grid

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--device", default="cpu")
parser.add_argument("--out", default="dcgan_mnist_samples.png")
args = parser.parse_args()

tg.manual_seed(0)
data = get_dataset("mnist")                                    # 10,000 real digits, uint8 (N, 1, 28, 28)
loader = DataLoader(data, batch_size=args.batch_size, seed=0)  # float32 batches scaled to [-1, 1]
nz = 100
G = DCGANGenerator(nz=nz, ngf=64, nc=1, image_size=28).to(args.device)   # z -> 7x7 -> 14x14 -> 28x28, Tanh
D = DCGANDiscriminator(nc=1, ndf=64, image_size=28).to(args.device)      # 28 -> 14 -> 7 -> one logit
# The paper's optimiser (tinygan/gan/recipes.py, DCGAN): Adam, lr 0.0002, betas (0.5, 0.999)
# (beta1 = 0.9 made the paper's training oscillate).
opt_g = optim.Adam(G.parameters(), lr=DCGAN.lr, betas=DCGAN.betas)
opt_d = optim.Adam(D.parameters(), lr=DCGAN.lr, betas=DCGAN.betas)
rng = np.random.default_rng(0)
fixed_z = tg.tensor(rng.standard_normal((64, nz)), dtype=np.float32, device=args.device)

step = 0
for epoch in range(10 ** 6):
    for x, _ in loader.epoch_batches(epoch):
        real = tg.tensor(x, device=args.device)                                     # (N, 1, 28, 28)
        z = tg.tensor(rng.standard_normal((len(x), nz)), dtype=np.float32, device=args.device)
        fake = G(z)                                                                 # (N, 1, 28, 28)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z))).
        # With D(x) = sigmoid(l(x)): log D(x) = -softplus(-l(x)) and log(1 - D(G(z))) = -softplus(l(G(z))),
        # so D minimises softplus(-l(x)) + softplus(l(G(z))) (stable for logits of any size).
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

        # (2) Update G: maximise log D(G(z)) (the non-saturating objective), i.e. minimise softplus(-l(G(z))).
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad()
        loss_g.backward()          # also fills D's .grad; opt_d.zero_grad() clears it before D's next step
        opt_g.step()

        step += 1
        if step % 50 == 0:
            print(f"step {step}  Loss_D {loss_d.item():.4f}  Loss_G {loss_g.item():.4f}")
        if step >= args.steps:
            break
    if step >= args.steps:
        break

G.eval()
with tg.no_grad():
    save_image_grid(G(fixed_z).numpy(), args.out, nrow=8, scale=2)
print(f"wrote {args.out}")
