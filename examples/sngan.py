"""SN-GAN (Miyato et al. 2018): every layer of D divided by its largest singular value, hinge loss.

What it shows: spectral normalisation as PyTorch lays it out (weight_orig, weight_u,
weight_v in D's state_dict), one power iteration per training forward, and what it does
to D: at the end the script prints each layer's sigma(W_orig) and the largest singular
value of the normalised weight, which the power iteration has driven to about 1.

    python examples/sngan.py                    # 400 steps: about 1.5 minutes on 2 CPU cores; writes runs/sngan/

Equations -> lines (tinygan/nn/spectral_norm.py):
  v <- W^T u / ||W^T u||,  u <- W v / ||W v||       SpectralNorm.power_iteration_ (training forwards only)
  sigma(W) = u^T W v  (u, v constants of the graph) SpectralNorm.sigma
  W_SN = W / sigma(W), differentiated through sigma SpectralNorm.compute_weight
  SN-DCGAN: DCGAN without batch norm in D, every conv normalised   tinygan/gan/models.py  build_gan("sngan")
  hinge loss: E[relu(1 - l(x))] + E[relu(1 + l(G(z)))], L_G = -E[l(G(z))]   losses.py  Hinge
  --spectral-norm does the same to D of any other model: tinygan train --model cgan --spectral-norm
"""
import numpy as np
from _common import parse

from tinygan.run import TrainConfig, train

args = parse(__doc__, 400, "runs/sngan")
t = train(TrainConfig(model="sngan", loss="hinge", ngf=32, ndf=32, steps=args.steps, batch_size=args.batch_size,
                      seed=args.seed, out=args.out, sample_every=100, device=args.device), overwrite=args.overwrite)
for name, m in t.D.named_modules():
    if hasattr(m, "weight_orig"):
        fn = m._spectral_norms[0]
        w = fn.matrix(np.asarray(m.weight_orig.numpy(), dtype=np.float64))
        sigma = float(np.asarray(m.weight_u, dtype=np.float64) @ w @ np.asarray(m.weight_v, dtype=np.float64))
        top = np.linalg.svd(w / sigma, compute_uv=False)[0]
        print(f"D.{name}: sigma(W_orig) = {sigma:.3f}, largest singular value of W_orig / sigma = {top:.3f}")
print(f"see {args.out}/samples/")
