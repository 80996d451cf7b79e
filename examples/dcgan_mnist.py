"""DCGAN on the bundled MNIST digits, written out as an explicit loop (the recipe of the DCGAN paper).

    python examples/dcgan_mnist.py               # 300 steps: about 2 minutes on 2 CPU cores
    python examples/dcgan_mnist.py --steps 2000 --out runs/dcgan_mnist_long

What it shows: the two updates of a GAN iteration, each objective commented next to the
line that computes it, with PyTorch's names (zero_grad, backward, step).  It writes
runs/dcgan_mnist/samples/step_NNNNNN.png (the same fixed noise every --sample-every steps)
and runs/dcgan_mnist/samples.png (the last).  Digits take shape after a few hundred steps.

This is what ``tinygan train`` does (see tinygan/gan/steps.py, d_step and g_step), without
the logging, checkpoints and resume, so that every equation sits next to its line.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

import tinygan as tg
import tinygan.functional as F
from tinygan import optim
from tinygan.data import DataLoader, get_dataset
from tinygan.gan import DCGANDiscriminator, DCGANGenerator
from tinygan.gan.recipes import DCGAN
from tinygan.viz import save_image_grid

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--steps", type=int, default=300, metavar="N",
                    help="generator updates (default: %(default)s; 2 is a smoke test)")
parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per batch (default: %(default)s)")
parser.add_argument("--nz", type=int, default=100, metavar="N",
                    help="size of the latent vector z (default: %(default)s)")
parser.add_argument("--ngf", type=int, default=64, metavar="N",
                    help="generator feature maps; 32 trains about 3x faster (default: %(default)s)")
parser.add_argument("--ndf", type=int, default=64, metavar="N",
                    help="discriminator feature maps (default: %(default)s)")
parser.add_argument("--lr", type=float, default=DCGAN.lr,
                    help="Adam's learning rate for both networks (default: %(default)s, the DCGAN paper's)")
parser.add_argument("--sample-every", type=int, default=100, metavar="N",
                    help="steps between sample grids (default: %(default)s)")
parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the weights, noise and data order")
parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: %(default)s)")
parser.add_argument("--out", default="runs/dcgan_mnist", metavar="DIR",
                    help="folder for the sample grids (default: %(default)s)")
parser.add_argument("--overwrite", action="store_true", help="replace the samples of an earlier run in --out")
args = parser.parse_args()

out = Path(args.out)
old = [out / "samples.png", *sorted((out / "samples").glob("step_*.png"))]
if any(p.exists() for p in old) and not args.overwrite:
    sys.exit(f"dcgan_mnist.py: --out {out} already holds samples of a run; add --overwrite or choose another --out")
for p in old:
    p.unlink(missing_ok=True)

tg.manual_seed(args.seed)                                      # the weights (tinygan's global generator)
data = get_dataset("mnist")                                    # 10,000 real digits, uint8 (N, 1, 28, 28)
loader = DataLoader(data, batch_size=args.batch_size, seed=args.seed)   # float32 batches scaled to [-1, 1]
nz = args.nz
G = DCGANGenerator(nz=nz, ngf=args.ngf, nc=1, image_size=28).to(args.device)   # z -> 7x7 -> 14x14 -> 28x28, Tanh
D = DCGANDiscriminator(nc=1, ndf=args.ndf, image_size=28).to(args.device)      # 28 -> 14 -> 7 -> one logit
# (Both constructors already draw the paper's weights: conv ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02);
#  in PyTorch's example that is G.apply(weights_init), tinygan/gan/dcgan.py::weights_init.)
# The paper's optimiser (tinygan/gan/recipes.py, DCGAN): Adam, lr 0.0002, betas (0.5, 0.999)
# (beta1 = 0.9 made the paper's training oscillate).
opt_g = optim.Adam(G.parameters(), lr=args.lr, betas=DCGAN.betas)
opt_d = optim.Adam(D.parameters(), lr=args.lr, betas=DCGAN.betas)
rng = np.random.default_rng(args.seed)                         # the noise z
fixed_z = tg.tensor(rng.standard_normal((64, nz)), dtype=np.float32, device=args.device)


def save_samples(path: Path) -> None:
    """G(fixed_z) as an 8x8 grid, in eval mode (batch norm uses its running statistics)."""
    G.eval()
    with tg.no_grad():
        save_image_grid(G(fixed_z).numpy(), path, nrow=8, scale=2)
    G.train()


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
        if step % 50 == 0 or step == args.steps:
            print(f"step {step}  Loss_D {loss_d.item():.4f}  Loss_G {loss_g.item():.4f}", flush=True)
        if step % args.sample_every == 0:
            save_samples(out / "samples" / f"step_{step:06d}.png")
        if step >= args.steps:
            break
    if step >= args.steps:
        break

save_samples(out / "samples.png")
print(f"wrote {out / 'samples.png'} and {out / 'samples'}/")
